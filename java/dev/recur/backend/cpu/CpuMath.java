package dev.recur.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 exp, sigmoid and tanh for the pointwise kernels, as polynomials on vectors. The Vector API's own
 * {@code EXP}/{@code TANH} call a math library per vector (about 1 and 3 ns per element here, several times
 * the cost of the gate arithmetic around them); these stay in registers. Accuracy: exp within 2 ulp over the
 * float range, sigmoid and tanh within about 2e-7 relative (tanh keeps its relative accuracy near 0 by
 * switching to its odd Taylor-like polynomial there). Scalar versions run the same formulas for loop tails,
 * so a lane's value does not depend on whether it fell in a vector or a tail.
 */
public final class CpuMath {
    private CpuMath() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    // Cephes expf: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n by building the exponent.
    private static final float EXP_HI = 88.0f;
    private static final float EXP_LO = -87.3365447504f;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    // Cephes tanhf for |x| < 0.625: x + x^3 Q(x^2).
    private static final float T0 = -5.70498872745e-3f;
    private static final float T1 = 2.06390887954e-2f;
    private static final float T2 = -5.37397155531e-2f;
    private static final float T3 = 1.33314422036e-1f;
    private static final float T4 = -3.33332819422e-1f;
    private static final float TANH_SMALL = 0.625f;

    /** e^x lane-wise; inputs beyond the float range saturate (to 2^-126 below -87.3, to e^88 above 88). */
    public static FloatVector exp(FloatVector x) {
        x = x.max(EXP_LO).min(EXP_HI);
        // Round to nearest by adding 1.5 * 2^23, which pushes the fraction out of the mantissa; the low
        // mantissa bits of that sum are then n itself, so 2^n is (bits + 127) << 23 with no conversion.
        FloatVector v = x.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND));
        FloatVector n = v.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(FloatVector.broadcast(S, P0), FloatVector.broadcast(S, P1));
        p = p.fma(r, FloatVector.broadcast(S, P2));
        p = p.fma(r, FloatVector.broadcast(S, P3));
        p = p.fma(r, FloatVector.broadcast(S, P4));
        p = p.fma(r, FloatVector.broadcast(S, P5));
        FloatVector e = p.fma(r.mul(r), r).add(1f);
        IntVector bits = v.reinterpretAsInts().add(127).lanewise(VectorOperators.LSHL, 23);
        return e.mul(bits.reinterpretAsFloats());
    }

    /** 1 / (1 + e^-x) lane-wise. */
    public static FloatVector sigmoid(FloatVector x) {
        return FloatVector.broadcast(S, 1f).div(exp(x.neg()).add(1f));
    }

    /** tanh lane-wise: the small-argument polynomial below 0.625 in magnitude, 1 - 2/(e^{2|x|} + 1) above. */
    public static FloatVector tanh(FloatVector x) {
        FloatVector ax = x.abs();
        FloatVector big = FloatVector.broadcast(S, 1f).sub(FloatVector.broadcast(S, 2f).div(exp(ax.add(ax)).add(1f)));
        big = big.blend(big.neg(), x.compare(VectorOperators.LT, 0f));
        FloatVector z = x.mul(x);
        FloatVector q = z.fma(FloatVector.broadcast(S, T0), FloatVector.broadcast(S, T1));
        q = q.fma(z, FloatVector.broadcast(S, T2));
        q = q.fma(z, FloatVector.broadcast(S, T3));
        q = q.fma(z, FloatVector.broadcast(S, T4));
        FloatVector small = q.mul(z).fma(x, x);
        VectorMask<Float> isSmall = ax.compare(VectorOperators.LT, TANH_SMALL);
        return big.blend(small, isSmall);
    }

    /**
     * The sum of the lanes, added left to right. {@code reduceLanes(ADD)} is free to add them in another order, and
     * does: its compiled form and its interpreted fallback disagree in the last bit, so a reduction's result would
     * depend on how far the JIT had got (seen as one attention call differing from the next by 6e-8).
     */
    public static float sumLanes(FloatVector v) {
        float s = v.lane(0);
        for (int i = 1; i < S.length(); i++) s += v.lane(i);
        return s;
    }

    /** Scalar e^x with the vector version's formula. */
    public static float exp(float x) {
        x = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float v = Math.fma(x, LOG2E, ROUND);
        float n = v - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float e = Math.fma(p, r * r, r) + 1f;
        return e * Float.intBitsToFloat((Float.floatToRawIntBits(v) + 127) << 23);
    }

    /** Scalar sigmoid with the vector version's formula. */
    public static float sigmoid(float x) {
        return 1f / (exp(-x) + 1f);
    }

    /** Scalar tanh with the vector version's formula. */
    public static float tanh(float x) {
        float ax = Math.abs(x);
        if (ax < TANH_SMALL) {
            float z = x * x;
            float q = Math.fma(z, T0, T1);
            q = Math.fma(q, z, T2);
            q = Math.fma(q, z, T3);
            q = Math.fma(q, z, T4);
            return Math.fma(q * z, x, x);
        }
        return Math.copySign(1f - 2f / (exp(ax + ax) + 1f), x);
    }
}
