package dev.recur.config;

/** Where the GRU's reset gate is applied: see {@link CellType}. */
public enum GruReset {
    /** PyTorch / cuDNN / Keras {@code reset_after=True}: r scales {@code W_hn h + b_hn}. */
    AFTER,
    /** Cho et al. 2014 / Keras {@code reset_after=False}: r scales h before {@code W_hn}. */
    BEFORE;

    public static GruReset parse(String s) {
        for (GruReset r : values()) if (r.name().equalsIgnoreCase(s)) return r;
        throw new IllegalArgumentException("gru-reset: expected after or before, got '" + s + "'");
    }
}
