package dev.recur.config;

/** How a bidirectional layer merges its two directions into its output. */
public enum MergeMode {
    /** {@code [fwd; bwd]}, width 2*Hout (PyTorch's only mode). */
    CONCAT,
    /** {@code fwd + bwd}. */
    SUM,
    /** {@code (fwd + bwd) / 2}. */
    AVE,
    /** {@code fwd * bwd}. */
    MUL;

    public static MergeMode parse(String s) {
        for (MergeMode m : values()) if (m.name().equalsIgnoreCase(s)) return m;
        throw new IllegalArgumentException("merge: expected concat, sum, ave or mul, got '" + s + "'");
    }
}
