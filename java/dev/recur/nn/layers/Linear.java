package dev.recur.nn.layers;

import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * {@code y = x · Wᵀ + b} over the last axis, {@code W [out, in]}, {@code b [out]} (PyTorch's {@code nn.Linear}),
 * with parameters {@code <prefix>.weight} and {@code <prefix>.bias}.
 */
public final class Linear {
    private final int in;
    private final int out;
    private final Parameters params;
    private final String weightName;
    private final String biasName;
    private final Tensor weight;
    private final Tensor bias;

    /**
     * Registers the parameters, initialised as PyTorch does (U(-1/sqrt(in), 1/sqrt(in)) for both), seeded,
     * rounded to float32.
     */
    public Linear(Parameters params, String prefix, int in, int out, boolean bias, long seed) {
        if (params == null) throw new IllegalArgumentException("params: must not be null");
        if (in <= 0) throw new IllegalArgumentException("in: expected > 0, got " + in);
        if (out <= 0) throw new IllegalArgumentException("out: expected > 0, got " + out);
        this.in = in;
        this.out = out;
        this.params = params;
        SplittableRandom rnd = new SplittableRandom(seed);
        double bound = 1.0 / Math.sqrt(in);
        Tensor w = Tensor.zeros(out, in);
        for (int i = 0; i < w.size(); i++) w.data()[i] = (float) rnd.nextDouble(-bound, bound);
        this.weightName = prefix + ".weight";
        this.weight = params.add(weightName, w);
        if (bias) {
            Tensor b = Tensor.zeros(out);
            for (int i = 0; i < out; i++) b.data()[i] = (float) rnd.nextDouble(-bound, bound);
            this.biasName = prefix + ".bias";
            this.bias = params.add(biasName, b);
        } else {
            this.biasName = null;
            this.bias = null;
        }
    }

    public int inFeatures() {
        return in;
    }

    public int outFeatures() {
        return out;
    }

    public String weightName() {
        return weightName;
    }

    /** Null without bias. */
    public String biasName() {
        return biasName;
    }

    /** {@code x [..., in]} → {@code [..., out]}. */
    public Tensor forward(Tensor x) {
        int rows = rows("x", x, in);
        int[] shape = x.shape();
        shape[shape.length - 1] = out;
        Tensor y = Tensor.zeros(shape);
        double[] xd = x.data(), w = weight.data(), yd = y.data();
        double[] b = bias == null ? null : bias.data();
        for (int r = 0; r < rows; r++) {
            int xo = r * in, yo = r * out;
            for (int o = 0; o < out; o++) {
                yd[yo + o] = (b == null ? 0 : b[o]) + dot(xd, xo, w, o * in, in);
            }
        }
        return y;
    }

    /** Accumulates the parameter gradients of {@code sum(y*dy)} for the forward of {@code x}; returns {@code dx}. */
    public Tensor backward(Tensor x, Tensor dy) {
        int rows = rows("x", x, in);
        int[] shape = x.shape();
        shape[shape.length - 1] = out;
        if (dy == null || !dy.sameShape(shape)) {
            throw new IllegalArgumentException("dy: expected shape " + Arrays.toString(shape) + ", got "
                    + (dy == null ? "null" : Arrays.toString(dy.shape())));
        }
        Tensor dx = Tensor.zeros(x.shape());
        double[] xd = x.data(), w = weight.data(), g = dy.data(), dxd = dx.data();
        double[] dw = params.grad(weightName).data();
        double[] db = bias == null ? null : params.grad(biasName).data();
        // Two passes of row updates (axpy) rather than one fused loop: each inner loop then writes a single
        // array, which the JIT vectorises.
        for (int r = 0; r < rows; r++) {
            int xo = r * in, yo = r * out;
            for (int o = 0; o < out; o++) {
                double gv = g[yo + o];
                if (gv == 0) continue;
                int wo = o * in;
                for (int i = 0; i < in; i++) dxd[xo + i] += gv * w[wo + i];
            }
        }
        for (int r = 0; r < rows; r++) {
            int xo = r * in, yo = r * out;
            for (int o = 0; o < out; o++) {
                double gv = g[yo + o];
                if (gv == 0) continue;
                if (db != null) db[o] += gv;
                int wo = o * in;
                for (int i = 0; i < in; i++) dw[wo + i] += gv * xd[xo + i];
            }
        }
        return dx;
    }

    /** A dot product with four partial sums (a fixed order, so results are deterministic). */
    private static double dot(double[] a, int ao, double[] b, int bo, int n) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[ao + i] * b[bo + i];
            s1 += a[ao + i + 1] * b[bo + i + 1];
            s2 += a[ao + i + 2] * b[bo + i + 2];
            s3 += a[ao + i + 3] * b[bo + i + 3];
        }
        for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
        return (s0 + s1) + (s2 + s3);
    }

    private static int rows(String name, Tensor x, int in) {
        if (x == null) throw new IllegalArgumentException(name + ": must not be null");
        if (x.rank() < 1 || x.dim(x.rank() - 1) != in) {
            throw new IllegalArgumentException(name + ": expected last dimension " + in + ", got shape " + Arrays.toString(x.shape()));
        }
        return x.size() / in;
    }
}
