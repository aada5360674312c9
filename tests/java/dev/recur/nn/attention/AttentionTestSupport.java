package dev.recur.nn.attention;

import dev.recur.config.AttentionConfig;
import dev.recur.engine.AttentionWeights;
import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Random inputs and the per-tensor comparison rule of the attention tests. */
public final class AttentionTestSupport {
    private AttentionTestSupport() {}

    /** Uniform in [-scale, scale], rounded to float32 so float32 backends start from identical numbers. */
    public static Tensor random(SplittableRandom rnd, double scale, int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-scale, scale);
        return t;
    }

    /** Weights in [-0.8, 0.8] (larger than the default init, so tanh leaves its linear range). */
    public static AttentionWeights randomWeights(AttentionConfig cfg, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        AttentionWeights w = AttentionWeights.init(cfg, seed);
        for (Tensor t : w.asMap().values()) {
            double[] d = t.data();
            for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-0.8, 0.8);
        }
        return w;
    }

    /**
     * {@code max|got - ref| <= tol * max(1, max|ref|)}; a failure names the tensor, the worst index, the
     * expected and the actual value.
     */
    public static void assertClose(String what, String name, Tensor ref, Tensor got, double tol) {
        if (ref == null || got == null) {
            throw new AssertionError(what + ": " + name + " expected " + (ref == null ? "null" : Arrays.toString(ref.shape()))
                    + ", got " + (got == null ? "null" : Arrays.toString(got.shape())));
        }
        if (!Arrays.equals(ref.shape(), got.shape())) {
            throw new AssertionError(what + ": " + name + " expected shape " + Arrays.toString(ref.shape()) + ", got "
                    + Arrays.toString(got.shape()));
        }
        double bound = tol * Math.max(1.0, ref.maxAbs());
        int worst = -1;
        double worstDiff = -1;
        for (int i = 0; i < ref.size(); i++) {
            double diff = Math.abs(ref.data()[i] - got.data()[i]);
            if (Double.isNaN(diff)) diff = Double.POSITIVE_INFINITY;
            if (diff > worstDiff) {
                worstDiff = diff;
                worst = i;
            }
        }
        if (worst >= 0 && !(worstDiff <= bound)) {
            throw new AssertionError(what + ": " + name + " at " + Arrays.toString(unflatten(worst, ref.shape()))
                    + ": expected " + ref.data()[worst] + ", got " + got.data()[worst] + " (|diff| " + worstDiff
                    + " > " + bound + ")");
        }
    }

    public static int[] unflatten(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
        return idx;
    }
}
