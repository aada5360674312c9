package dev.recur.engine;

import dev.recur.config.RnnConfig;
import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The parameters of an {@link RnnConfig}, by PyTorch's {@code state_dict} names, in PyTorch's order.
 *
 * <p>Per layer {@code k} and direction suffix {@code s} ({@code ""} or {@code "_reverse"}):
 * <ul>
 *   <li>{@code weight_ih_l{k}{s}} {@code [G*H, in_k]}, {@code weight_hh_l{k}{s}} {@code [G*H, Hout]}</li>
 *   <li>{@code bias_ih_l{k}{s}}, {@code bias_hh_l{k}{s}} {@code [G*H]} (when {@code bias})</li>
 *   <li>{@code weight_hr_l{k}{s}} {@code [P, H]} (LSTM projection)</li>
 *   <li>extensions, not in PyTorch: {@code weight_ci/cf/co_l{k}{s}} {@code [H]} (peepholes; no {@code cf}
 *       with the coupled gate), {@code ln_ih_weight/ln_ih_bias/ln_hh_weight/ln_hh_bias_l{k}{s}}
 *       {@code [G*H]} (layer-norm gain and shift per gate block)</li>
 * </ul>
 * Gate blocks are stacked in PyTorch's order: LSTM i,f,g,o (coupled: i,g,o), GRU r,z,n.
 */
public final class RnnWeights {
    private final RnnConfig config;
    private final LinkedHashMap<String, Tensor> tensors;

    private RnnWeights(RnnConfig config, LinkedHashMap<String, Tensor> tensors) {
        this.config = config;
        this.tensors = tensors;
    }

    /** Direction suffix as PyTorch writes it. */
    public static String suffix(int layer, int direction) {
        return "_l" + layer + (direction == 1 ? "_reverse" : "");
    }

    /** Every parameter name with its shape, in order. */
    public static LinkedHashMap<String, int[]> shapes(RnnConfig c) {
        LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
        int gh = c.gates() * c.hiddenSize();
        for (int k = 0; k < c.numLayers(); k++) {
            for (int d = 0; d < c.directions(); d++) {
                String s = suffix(k, d);
                m.put("weight_ih" + s, new int[] {gh, c.layerInputSize(k)});
                m.put("weight_hh" + s, new int[] {gh, c.outSize()});
                if (c.bias()) {
                    m.put("bias_ih" + s, new int[] {gh});
                    m.put("bias_hh" + s, new int[] {gh});
                }
                if (c.projSize() > 0) m.put("weight_hr" + s, new int[] {c.projSize(), c.hiddenSize()});
                if (c.peephole()) {
                    m.put("weight_ci" + s, new int[] {c.hiddenSize()});
                    if (!c.coupledGate()) m.put("weight_cf" + s, new int[] {c.hiddenSize()});
                    m.put("weight_co" + s, new int[] {c.hiddenSize()});
                }
                if (c.layerNorm()) {
                    m.put("ln_ih_weight" + s, new int[] {gh});
                    m.put("ln_ih_bias" + s, new int[] {gh});
                    m.put("ln_hh_weight" + s, new int[] {gh});
                    m.put("ln_hh_bias" + s, new int[] {gh});
                }
            }
        }
        return m;
    }

    /**
     * PyTorch's default initialisation, seeded: every weight and bias U(-1/sqrt(H), 1/sqrt(H)); layer-norm
     * gains 1 and shifts 0.
     */
    public static RnnWeights init(RnnConfig c, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double bound = 1.0 / Math.sqrt(c.hiddenSize());
        LinkedHashMap<String, Tensor> m = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : shapes(c).entrySet()) {
            Tensor t = Tensor.zeros(e.getValue());
            String name = e.getKey();
            if (name.startsWith("ln_")) {
                if (name.contains("_weight")) Arrays.fill(t.data(), 1.0);
            } else {
                double[] d = t.data();
                for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-bound, bound);
            }
            m.put(name, t);
        }
        return new RnnWeights(c, m);
    }

    /**
     * Takes the tensors of a {@code state_dict} (e.g. read from safetensors). Every expected name must be
     * present with its exact shape and no other name may appear; the message names the tensor and both shapes.
     */
    public static RnnWeights of(RnnConfig c, Map<String, Tensor> given) {
        if (c == null) throw new IllegalArgumentException("config: must not be null");
        if (given == null) throw new IllegalArgumentException("weights: the tensor map must not be null");
        LinkedHashMap<String, int[]> expected = shapes(c);
        LinkedHashMap<String, Tensor> m = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : expected.entrySet()) {
            Tensor t = given.get(e.getKey());
            if (t == null) {
                throw new IllegalArgumentException("weights: missing tensor '" + e.getKey() + "' of shape "
                        + Arrays.toString(e.getValue()));
            }
            if (!t.sameShape(e.getValue())) {
                throw new IllegalArgumentException("weights: tensor '" + e.getKey() + "' expected shape "
                        + Arrays.toString(e.getValue()) + ", got " + Arrays.toString(t.shape()));
            }
            m.put(e.getKey(), t);
        }
        List<String> extra = new ArrayList<>();
        for (String k : given.keySet()) if (!expected.containsKey(k)) extra.add(k);
        if (!extra.isEmpty()) {
            throw new IllegalArgumentException("weights: unexpected tensor(s) " + extra + " for configuration " + c);
        }
        return new RnnWeights(c, m);
    }

    public RnnConfig config() {
        return config;
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException("weights: no tensor named '" + name + "'");
        return t;
    }

    /** Null when the parameter does not exist in this configuration. */
    public Tensor find(String name) {
        return tensors.get(name);
    }

    public Tensor get(String base, int layer, int direction) {
        return get(base + suffix(layer, direction));
    }

    public Tensor find(String base, int layer, int direction) {
        return find(base + suffix(layer, direction));
    }

    /** Unmodifiable name → tensor view, in PyTorch order. */
    public Map<String, Tensor> asMap() {
        return Collections.unmodifiableMap(tensors);
    }

    /** Deep copy. */
    public RnnWeights copy() {
        LinkedHashMap<String, Tensor> m = new LinkedHashMap<>();
        tensors.forEach((k, v) -> m.put(k, v.copy()));
        return new RnnWeights(config, m);
    }
}
