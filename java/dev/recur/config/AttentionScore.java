package dev.recur.config;

import java.util.List;
import java.util.Locale;

/**
 * How a decoder state {@code d} (width Hd) is scored against an encoder state {@code e} (width He).
 * <ul>
 *   <li>{@link #DOT} (Luong): {@code s = d·e}; needs Hd == He; no weights.</li>
 *   <li>{@link #SCALED}: {@code s = d·e / sqrt(He)}; needs Hd == He; no weights.</li>
 *   <li>{@link #GENERAL} (Luong, multiplicative): {@code s = d · W_a · e}, {@code W_a [Hd, He]}.</li>
 *   <li>{@link #ADDITIVE} (Bahdanau): {@code s = v · tanh(W1 e + W2 d)}, {@code W1 [A, He]},
 *       {@code W2 [A, Hd]}, {@code v [A]}.</li>
 * </ul>
 */
public enum AttentionScore {
    DOT(List.of()),
    SCALED(List.of()),
    GENERAL(List.of("W_a")),
    ADDITIVE(List.of("W1", "W2", "v"));

    private final List<String> weightNames;

    AttentionScore(List<String> weightNames) {
        this.weightNames = weightNames;
    }

    /** The names of this score's parameters, in a fixed order (empty for dot and scaled). */
    public List<String> weightNames() {
        return weightNames;
    }

    /** The lower-case name used on the command line and in files ({@code dot}, {@code scaled}, ...). */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code dot}, {@code scaled}, {@code general} or {@code additive} (any case). */
    public static AttentionScore parse(String s) {
        if (s != null) {
            for (AttentionScore a : values()) if (a.name().equalsIgnoreCase(s.strip())) return a;
        }
        throw new IllegalArgumentException("score: expected one of dot, scaled, general, additive, got '" + s + "'");
    }
}
