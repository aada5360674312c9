package dev.recur.backend.reference;

import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

/** Shared helpers of the reference tests: random tensors and weights, loss, comparisons. */
final class RefTestSupport {
    private RefTestSupport() {}

    static Tensor random(SplittableRandom rnd, double scale, int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = rnd.nextDouble(-scale, scale);
        return t;
    }

    /**
     * Weights with every entry random, layer-norm gains around 1 and shifts around 0, so that every parameter
     * (including the layer-norm ones, which initialise to 1 and 0) has a non-trivial gradient.
     */
    static RnnWeights randomWeights(RnnConfig c, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        RnnWeights w = RnnWeights.init(c, seed);
        for (Map.Entry<String, Tensor> e : w.asMap().entrySet()) {
            double[] d = e.getValue().data();
            boolean gain = e.getKey().startsWith("ln_") && e.getKey().contains("_weight");
            for (int i = 0; i < d.length; i++) d[i] = (gain ? 1.0 : 0.0) + rnd.nextDouble(-0.6, 0.6);
        }
        return w;
    }

    /** sum(a*b) over all elements; 0 when either is null. */
    static double dot(Tensor a, Tensor b) {
        if (a == null || b == null) return 0;
        double s = 0;
        for (int i = 0; i < a.size(); i++) s += a.data()[i] * b.data()[i];
        return s;
    }

    static int[] unflatten(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
        return idx;
    }

    /** Asserts every element equal within {@code tol}, naming the tensor, index, expected and actual value. */
    static void assertClose(String name, Tensor expected, Tensor actual, double tol) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            throw new AssertionError(name + ": expected shape " + Arrays.toString(expected.shape()) + ", got "
                    + Arrays.toString(actual.shape()));
        }
        for (int i = 0; i < expected.size(); i++) {
            double e = expected.data()[i];
            double a = actual.data()[i];
            if (!(Math.abs(e - a) <= tol)) {
                throw new AssertionError(name + " at " + Arrays.toString(unflatten(i, expected.shape())) + ": expected "
                        + e + ", got " + a + " (|diff| " + Math.abs(e - a) + " > " + tol + ")");
            }
        }
    }
}
