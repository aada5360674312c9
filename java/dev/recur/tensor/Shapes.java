package dev.recur.tensor;

import java.util.Arrays;

/** Argument checks that name the argument, the expected and the actual value. */
public final class Shapes {
    private Shapes() {}

    /** Throws unless {@code t} is non-null and has exactly {@code expected} shape. */
    public static Tensor require(String name, Tensor t, int... expected) {
        if (t == null) {
            throw new IllegalArgumentException(name + ": required tensor of shape " + Arrays.toString(expected)
                    + " is missing");
        }
        if (!t.sameShape(expected)) {
            throw new IllegalArgumentException(name + ": expected shape " + Arrays.toString(expected) + ", got "
                    + Arrays.toString(t.shape()));
        }
        return t;
    }

    /** As {@link #require} but a null tensor is allowed. */
    public static Tensor optional(String name, Tensor t, int... expected) {
        return t == null ? null : require(name, t, expected);
    }

    public static int positive(String name, int value) {
        if (value <= 0) throw new IllegalArgumentException(name + ": expected > 0, got " + value);
        return value;
    }

    /** Throws naming the tensor and first index of a NaN or infinity. */
    public static void requireFinite(String name, Tensor t) {
        if (t == null) return;
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            if (!Double.isFinite(d[i])) {
                throw new IllegalArgumentException(name + ": non-finite value " + d[i] + " at index "
                        + Arrays.toString(unflatten(i, t.shape())) + " (flat index " + i + ", shape "
                        + Arrays.toString(t.shape()) + ")");
            }
        }
    }

    /** The multi-dimensional index of row-major element {@code flat} of {@code shape}. */
    public static int[] unflatten(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
        return idx;
    }
}
