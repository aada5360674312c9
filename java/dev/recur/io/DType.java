package dev.recur.io;

/**
 * The safetensors element types recur reads and writes. Every value becomes a float64 in a
 * {@link dev.recur.tensor.Tensor}: float32 widens exactly, and integers are kept only while they are exact
 * in a double (|v| &lt;= 2^53), so a file written from a tensor reads back bit for bit.
 */
public enum DType {
    F32(4, false),
    F64(8, false),
    I32(4, true),
    I64(8, true);

    /** The largest integer magnitude every double represents exactly. */
    static final long MAX_EXACT_INTEGER = 1L << 53;

    private final int bytes;
    private final boolean integer;

    DType(int bytes, boolean integer) {
        this.bytes = bytes;
        this.integer = integer;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    public boolean isInteger() {
        return integer;
    }

    /** The dtype for a safetensors header string such as {@code "F32"}, or null when recur does not support it. */
    public static DType fromHeader(String s) {
        for (DType d : values()) if (d.name().equals(s)) return d;
        return null;
    }

    /** Parses {@code f32}, {@code f64}, {@code i32}, {@code i64} (any case), for options. */
    public static DType parse(String s) {
        for (DType d : values()) if (d.name().equalsIgnoreCase(s)) return d;
        throw new IllegalArgumentException("dtype: expected one of f32, f64, i32, i64, got '" + s + "'");
    }
}
