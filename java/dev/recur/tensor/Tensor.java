package dev.recur.tensor;

import java.util.Arrays;

/**
 * A dense, row-major host tensor of float64 values with a fixed shape.
 *
 * <p>Host tensors are the currency of the public API: device backends convert to float32 when they
 * upload and back when they download (float32 → float64 → float32 is exact, so nothing is lost on
 * the way through). The reference backend computes on these values directly in float64.
 *
 * <p>{@link #data()} is the live backing array, not a copy: engines and tests write into it. Use
 * {@link #copy()} when an independent tensor is wanted.
 */
public final class Tensor {
    private final int[] shape;
    private final double[] data;

    private Tensor(int[] shape, double[] data) {
        this.shape = shape;
        this.data = data;
    }

    /** A tensor of zeros. */
    public static Tensor zeros(int... shape) {
        return new Tensor(shape.clone(), new double[Math.toIntExact(checkedSize("shape", shape))]);
    }

    /** Wraps {@code data} (not copied); its length must equal the product of {@code shape}. */
    public static Tensor of(double[] data, int... shape) {
        long n = checkedSize("shape", shape);
        if (data.length != n) {
            throw new IllegalArgumentException("data: expected " + n + " elements for shape "
                    + Arrays.toString(shape) + ", got " + data.length);
        }
        return new Tensor(shape.clone(), data);
    }

    /** Copies float32 values into a new tensor. */
    public static Tensor ofFloats(float[] data, int... shape) {
        double[] d = new double[data.length];
        for (int i = 0; i < d.length; i++) d[i] = data[i];
        return of(d, shape);
    }

    /** Scalar-filled tensor. */
    public static Tensor full(double value, int... shape) {
        Tensor t = zeros(shape);
        Arrays.fill(t.data, value);
        return t;
    }

    static long checkedSize(String name, int[] shape) {
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException(name + ": dimension " + i + " must be >= 0, got "
                        + Arrays.toString(shape));
            }
            n *= shape[i];
            if (n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException(name + ": " + Arrays.toString(shape)
                        + " has more elements than a Java array can hold (limit " + (Integer.MAX_VALUE - 8) + ")");
            }
        }
        return n;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return shape[i];
    }

    public int size() {
        return data.length;
    }

    /** The live backing array (row-major). */
    public double[] data() {
        return data;
    }

    public double get(int... index) {
        return data[offset(index)];
    }

    public void set(double value, int... index) {
        data[offset(index)] = value;
    }

    private int offset(int[] index) {
        if (index.length != shape.length) {
            throw new IllegalArgumentException("index: expected rank " + shape.length + ", got " + index.length);
        }
        int off = 0;
        for (int i = 0; i < index.length; i++) {
            if (index[i] < 0 || index[i] >= shape[i]) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(index) + " outside shape "
                        + Arrays.toString(shape));
            }
            off = off * shape[i] + index[i];
        }
        return off;
    }

    public Tensor copy() {
        return new Tensor(shape.clone(), data.clone());
    }

    /** Same data, another shape with the same element count. */
    public Tensor reshape(int... newShape) {
        return of(data, newShape);
    }

    public float[] toFloatArray() {
        float[] f = new float[data.length];
        for (int i = 0; i < f.length; i++) f[i] = (float) data[i];
        return f;
    }

    /** The largest absolute value (0 for an empty tensor). */
    public double maxAbs() {
        double m = 0;
        for (double v : data) m = Math.max(m, Math.abs(v));
        return m;
    }

    public boolean sameShape(int... other) {
        return Arrays.equals(shape, other);
    }

    /**
     * Swaps the first two axes: {@code [A, B, ...] -> [B, A, ...]}. Converts between batch-first and
     * time-major layouts.
     */
    public Tensor transpose01() {
        if (shape.length < 2) throw new IllegalArgumentException("transpose01: rank must be >= 2, got " + shape.length);
        int a = shape[0], b = shape[1];
        int inner = a == 0 || b == 0 ? 0 : data.length / (a * b);
        int[] ns = shape.clone();
        ns[0] = b;
        ns[1] = a;
        double[] out = new double[data.length];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < b; j++)
                System.arraycopy(data, (i * b + j) * inner, out, (j * a + i) * inner, inner);
        return new Tensor(ns, out);
    }

    public static String shapeString(int... shape) {
        return Arrays.toString(shape);
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape);
    }
}
