package dev.recur.nn.layers;

import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Writes an {@link RnnConfig} as string entries of a checkpoint's metadata ({@code <prefix>.cell},
 * {@code <prefix>.hiddenSize}, ...) and reads it back, so a checkpoint alone can rebuild its model.
 */
public final class ConfigMetadata {
    private ConfigMetadata() {}

    public static Map<String, String> encode(String prefix, RnnConfig c) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(prefix + ".cell", c.cell().name());
        m.put(prefix + ".inputSize", Integer.toString(c.inputSize()));
        m.put(prefix + ".hiddenSize", Integer.toString(c.hiddenSize()));
        m.put(prefix + ".numLayers", Integer.toString(c.numLayers()));
        m.put(prefix + ".bidirectional", Boolean.toString(c.bidirectional()));
        m.put(prefix + ".projSize", Integer.toString(c.projSize()));
        m.put(prefix + ".bias", Boolean.toString(c.bias()));
        m.put(prefix + ".gruReset", c.gruReset().name());
        m.put(prefix + ".peephole", Boolean.toString(c.peephole()));
        m.put(prefix + ".coupledGate", Boolean.toString(c.coupledGate()));
        m.put(prefix + ".layerNorm", Boolean.toString(c.layerNorm()));
        m.put(prefix + ".inputDropout", Double.toString(c.inputDropout()));
        m.put(prefix + ".recurrentDropout", Double.toString(c.recurrentDropout()));
        m.put(prefix + ".dropout", Double.toString(c.dropout()));
        m.put(prefix + ".residual", Boolean.toString(c.residual()));
        m.put(prefix + ".merge", c.merge().name());
        m.put(prefix + ".batchFirst", Boolean.toString(c.batchFirst()));
        return m;
    }

    public static RnnConfig decode(String prefix, Map<String, String> m) {
        return new RnnConfig(
                CellType.valueOf(get(m, prefix + ".cell")),
                integer(m, prefix + ".inputSize"),
                integer(m, prefix + ".hiddenSize"),
                integer(m, prefix + ".numLayers"),
                bool(m, prefix + ".bidirectional"),
                integer(m, prefix + ".projSize"),
                bool(m, prefix + ".bias"),
                GruReset.valueOf(get(m, prefix + ".gruReset")),
                bool(m, prefix + ".peephole"),
                bool(m, prefix + ".coupledGate"),
                bool(m, prefix + ".layerNorm"),
                real(m, prefix + ".inputDropout"),
                real(m, prefix + ".recurrentDropout"),
                real(m, prefix + ".dropout"),
                bool(m, prefix + ".residual"),
                MergeMode.valueOf(get(m, prefix + ".merge")),
                bool(m, prefix + ".batchFirst"));
    }

    /** The entry, or an exception naming the missing key. */
    public static String get(Map<String, String> m, String key) {
        String v = m.get(key);
        if (v == null) throw new IllegalArgumentException("metadata: missing entry '" + key + "'");
        return v;
    }

    public static int integer(Map<String, String> m, String key) {
        String v = get(m, key);
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("metadata: entry '" + key + "' expected an integer, got '" + v + "'");
        }
    }

    public static double real(Map<String, String> m, String key) {
        String v = get(m, key);
        try {
            return Double.parseDouble(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("metadata: entry '" + key + "' expected a number, got '" + v + "'");
        }
    }

    public static boolean bool(Map<String, String> m, String key) {
        String v = get(m, key).strip().toLowerCase(Locale.ROOT);
        if (!v.equals("true") && !v.equals("false")) {
            throw new IllegalArgumentException("metadata: entry '" + key + "' expected true or false, got '" + v + "'");
        }
        return v.equals("true");
    }
}
