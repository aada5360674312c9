package dev.recur.backend.cpu;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.function.DoubleUnaryOperator;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** {@link CpuMath} against float64 java.lang.Math over a dense grid, vector and scalar forms. */
class CpuMathTest {
    private static final int L = CpuMath.S.length();

    private static float[] grid(float lo, float hi, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = lo + (hi - lo) * i / (n - 1);
        return x;
    }

    private static void check(String name, float[] xs, UnaryOperator<FloatVector> vec, java.util.function.Function<Float, Float> scalar,
                              DoubleUnaryOperator exact, double relTol, double absTol) {
        float[] got = new float[xs.length];
        for (int i = 0; i + L <= xs.length; i += L) vec.apply(FloatVector.fromArray(CpuMath.S, xs, i)).intoArray(got, i);
        for (int i = 0; i < xs.length; i++) {
            double want = exact.applyAsDouble(xs[i]);
            double tol = Math.max(absTol, relTol * Math.abs(want));
            float s = scalar.apply(xs[i]);
            if (!(Math.abs(s - want) <= tol)) fail(name + " scalar at x=" + xs[i] + ": expected " + want + " got " + s);
            if (i < xs.length - xs.length % L && !(Math.abs(got[i] - want) <= tol)) {
                fail(name + " vector at x=" + xs[i] + ": expected " + want + " got " + got[i]);
            }
            if (i < xs.length - xs.length % L && got[i] != s) {
                fail(name + " at x=" + xs[i] + ": vector " + got[i] + " and scalar " + s + " differ");
            }
        }
    }

    @Test
    void expWithinTwoUlps() {
        check("exp", grid(-87f, 87.9f, 200_003), CpuMath::exp, CpuMath::exp, Math::exp, 2.5e-7, 0);
    }

    @Test
    void sigmoidRelativeAccuracy() {
        check("sigmoid", grid(-80f, 80f, 200_003), CpuMath::sigmoid, CpuMath::sigmoid,
                x -> 1 / (1 + Math.exp(-x)), 4e-7, 0);
    }

    @Test
    void tanhRelativeAccuracyIncludingNearZero() {
        check("tanh", grid(-20f, 20f, 200_003), CpuMath::tanh, CpuMath::tanh, Math::tanh, 3e-7, 0);
        check("tanh small", grid(-1e-3f, 1e-3f, 20_001), CpuMath::tanh, CpuMath::tanh, Math::tanh, 3e-7, 0);
        // The switch point between the two formulas.
        check("tanh switch", grid(0.62f, 0.63f, 10_001), CpuMath::tanh, CpuMath::tanh, Math::tanh, 3e-7, 0);
    }

    @Test
    void saturatesWithoutNaN() {
        float[] xs = new float[L];
        for (int i = 0; i < L; i++) xs[i] = i % 2 == 0 ? 1e30f : -1e30f;
        float[] t = new float[L], s = new float[L];
        CpuMath.tanh(FloatVector.fromArray(CpuMath.S, xs, 0)).intoArray(t, 0);
        CpuMath.sigmoid(FloatVector.fromArray(CpuMath.S, xs, 0)).intoArray(s, 0);
        for (int i = 0; i < L; i++) {
            assertEquals(i % 2 == 0 ? 1f : -1f, t[i], "tanh(" + xs[i] + ")");
            assertEquals(i % 2 == 0 ? 1f : 0f, s[i], 1e-37, "sigmoid(" + xs[i] + ")");
        }
        assertEquals(1f, CpuMath.tanh(Float.POSITIVE_INFINITY), "scalar tanh(+inf)");
        assertEquals(0f, CpuMath.sigmoid(Float.NEGATIVE_INFINITY), 1e-37, "scalar sigmoid(-inf)");
    }

    /**
     * sumLanes adds left to right, exactly as a scalar loop: the same bits however the JIT has compiled the call. Over
     * many calls, so the check also runs once C2 has compiled it; values of mixed magnitude and sign, where the order
     * of the additions shows in the last bits.
     */
    @Test
    void sumLanesAddsLeftToRightWhateverTheJitHasDone() {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(5);
        float[] v = new float[L];
        int orderShows = 0;
        for (int call = 0; call < 200_000; call++) {
            for (int i = 0; i < L; i++) v[i] = (float) ((rnd.nextDouble() - 0.5) * Math.pow(10, rnd.nextInt(8)));
            float want = v[0];
            for (int i = 1; i < L; i++) want += v[i];
            float pairwise = 0f;
            for (int h = 0; h < L / 2; h++) pairwise += v[h] + v[h + L / 2];
            if (pairwise != want) orderShows++;
            float got = CpuMath.sumLanes(FloatVector.fromArray(CpuMath.S, v, 0));
            if (Float.floatToRawIntBits(got) != Float.floatToRawIntBits(want)) {
                fail("call " + call + ": sumLanes gave " + got + ", left to right gives " + want);
            }
        }
        // The data must be able to tell orders apart, or the check above would pass for any order.
        if (orderShows < 1000) fail("only " + orderShows + " of 200000 vectors sum differently in another order");
    }
}
