package dev.recur.device;

import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

/** Random inputs and the per-tensor comparison rule of the device suites. */
public final class DeviceTestSupport {
    private DeviceTestSupport() {}

    public static Tensor random(SplittableRandom rnd, double scale, int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-scale, scale);
        return t;
    }

    /** Every parameter random in [-0.6, 0.6] (float32-exact), so every gradient is non-trivial. */
    public static RnnWeights randomWeights(RnnConfig c, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        RnnWeights w = RnnWeights.init(c, seed);
        for (Map.Entry<String, Tensor> e : w.asMap().entrySet()) {
            double[] d = e.getValue().data();
            boolean gain = e.getKey().startsWith("ln_") && e.getKey().contains("_weight");
            for (int i = 0; i < d.length; i++) d[i] = (float) ((gain ? 1.0 : 0.0) + rnd.nextDouble(-0.6, 0.6));
        }
        return w;
    }

    /**
     * The suite's rule: {@code max|got - ref| <= tol * max(1, max|ref|)}; a failure names the tensor, the worst
     * index, the expected and the actual value.
     */
    public static void assertClose(String what, String name, Tensor ref, Tensor got, double tol) {
        if (ref == null && got == null) return;
        if (ref == null || got == null) {
            throw new AssertionError(what + ": " + name + " expected " + (ref == null ? "null" : "a tensor") + ", got "
                    + (got == null ? "null" : Arrays.toString(got.shape())));
        }
        if (!Arrays.equals(ref.shape(), got.shape())) {
            throw new AssertionError(what + ": " + name + " expected shape " + Arrays.toString(ref.shape()) + ", got "
                    + Arrays.toString(got.shape()));
        }
        double bound = tol * Math.max(1.0, ref.maxAbs());
        int worst = -1;
        double worstDiff = 0;
        for (int i = 0; i < ref.size(); i++) {
            double diff = Math.abs(ref.data()[i] - got.data()[i]);
            if (!(diff <= worstDiff) || Double.isNaN(diff)) {
                worstDiff = Double.isNaN(diff) ? Double.POSITIVE_INFINITY : diff;
                worst = i;
            }
        }
        if (worst >= 0 && !(worstDiff <= bound)) {
            throw new AssertionError(what + ": " + name + " at " + Arrays.toString(unflatten(worst, ref.shape()))
                    + ": expected " + ref.data()[worst] + ", got " + got.data()[worst] + " (|diff| " + worstDiff
                    + " > " + bound + ")");
        }
    }

    static int[] unflatten(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
        return idx;
    }
}
