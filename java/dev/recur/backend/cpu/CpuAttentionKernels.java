package dev.recur.backend.cpu;

import dev.recur.backend.AttentionKernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The attention kernels of {@link AttentionKernels} as plain Java over the buffers' memory segments (native
 * order, like every {@code CpuBuffer}), for the {@code cpu} backend. Each method follows its
 * {@code kernels/common/attention.h} body line by line, covering the work items inside both the launch grid
 * ({@code grid}, padded to 3 extents) and the extents given as arguments, so a rounded-up grid is harmless.
 * Vector loops (the preferred float species) with masked tails: sums run in another order than the device
 * kernels' and multiply-adds are fused, so results agree with them to float32 rounding, not bit for bit.
 *
 * <p>Registration in {@code CpuKernels} (argument positions as in the catalogue):
 * <pre>{@code
 * spec(AttentionKernels.ATTN_SCORES_ADDITIVE_FWD, "U:i B:i T:i A:i ekt:F dk:F v:F scores:F",
 *         (k, a) -> CpuAttentionKernels.additiveFwd(a.grid, a.i(0), a.i(1), a.i(2), a.i(3), a.m(4), a.m(5), a.m(6), a.m(7)));
 * spec(AttentionKernels.ATTN_SCORES_ADDITIVE_BWD, "U:i B:i T:i A:i ek:F dk:F v:F ds:F ddk:F dek:F dvpart:F",
 *         (k, a) -> CpuAttentionKernels.additiveBwd(a.grid, a.i(0), a.i(1), a.i(2), a.i(3), a.m(4), a.m(5), a.m(6),
 *                 a.m(7), a.m(8), a.m(9), a.m(10)));
 * spec(AttentionKernels.MASKED_SOFTMAX_FWD, "U:i B:i T:i mask:I scores:F weights:F",
 *         (k, a) -> CpuAttentionKernels.maskedSoftmaxFwd(a.grid, a.i(0), a.i(1), a.i(2), a.m(3), a.m(4), a.m(5)));
 * spec(AttentionKernels.MASKED_SOFTMAX_BWD, "U:i B:i T:i mask:I weights:F dw:F ds:F",
 *         (k, a) -> CpuAttentionKernels.maskedSoftmaxBwd(a.grid, a.i(0), a.i(1), a.i(2), a.m(3), a.m(4), a.m(5), a.m(6)));
 * }</pre>
 */
public final class CpuAttentionKernels {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final int TT = AttentionKernels.ADDITIVE_CHUNK;

    private CpuAttentionKernels() {}

    /** The same tanh as the device kernels ({@code recur_tanh} of kernels/common/step.h): a rational function, |error| below 4e-7. */
    static float tanh(float x) {
        float c = Math.max(-9.0f, Math.min(9.0f, x));
        float x2 = c * c;
        float p = -2.76076847742355e-16f;
        p = p * x2 + 2.00018790482477e-13f;
        p = p * x2 - 8.60467152213735e-11f;
        p = p * x2 + 5.12229709037114e-08f;
        p = p * x2 + 1.48572235717979e-05f;
        p = p * x2 + 6.37261928875436e-04f;
        p = p * x2 + 4.89352455891786e-03f;
        float q = 1.19825839466702e-06f;
        q = q * x2 + 1.18534705686654e-04f;
        q = q * x2 + 2.26843463243900e-03f;
        q = q * x2 + 4.89352518554385e-03f;
        return c * p / q;
    }

    private static float f(MemorySegment m, long i) {
        return m.getAtIndex(F, i);
    }

    private static int ext(long[] grid, int dim, long extent) {
        return (int) Math.max(0, Math.min(grid.length > dim ? grid[dim] : 1, extent));
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();

    /** {@link #tanh(float)} lane-wise, with multiply-adds fused (so within the same bound, not bit-identical). */
    static FloatVector tanh(FloatVector x) {
        FloatVector c = x.max(-9.0f).min(9.0f);
        FloatVector x2 = c.mul(c);
        FloatVector p = x2.fma(-2.76076847742355e-16f, 2.00018790482477e-13f);
        p = p.fma(x2, FloatVector.broadcast(S, -8.60467152213735e-11f));
        p = p.fma(x2, FloatVector.broadcast(S, 5.12229709037114e-08f));
        p = p.fma(x2, FloatVector.broadcast(S, 1.48572235717979e-05f));
        p = p.fma(x2, FloatVector.broadcast(S, 6.37261928875436e-04f));
        p = p.fma(x2, FloatVector.broadcast(S, 4.89352455891786e-03f));
        FloatVector q = x2.fma(1.19825839466702e-06f, 1.18534705686654e-04f);
        q = q.fma(x2, FloatVector.broadcast(S, 2.26843463243900e-03f));
        q = q.fma(x2, FloatVector.broadcast(S, 4.89352518554385e-03f));
        return c.mul(p).div(q);
    }

    private static FloatVector load(MemorySegment m, long i) {
        return FloatVector.fromMemorySegment(S, m, i * Float.BYTES, NATIVE);
    }

    /** Lanes of {@code mask[i .. i+L)} that are nonzero. */
    private static VectorMask<Float> valid(MemorySegment mask, long i) {
        return IntVector.fromMemorySegment(SI, mask, i * Integer.BYTES, NATIVE).compare(VectorOperators.NE, 0).cast(S);
    }

    /*
     * Each additive loop calls the vector tanh from a single place: C2 stops inlining a method's calls once its
     * graph is large, and a vector tanh left as a call boxes its argument and result, which costs ten times the
     * arithmetic. One chain per loop is enough: the tanh of consecutive iterations are independent, so they
     * overlap. Vectors are loaded unmasked (masked loads from a memory segment are not intrinsified here and
     * fall back to a lane loop); the last, partial vector goes through an array. Batch rows are the outer loop,
     * so that one row's ek/ekt (T x A floats) stays in cache while every decoder step reads it.
     */

    /**
     * {@code attn_scores_additive_fwd}, grid {ceil(T/8), B, U}: {@code scores[u,b,t] = sum_a v[a] tanh(ekt[b,a,t] + dk[u,b,a])};
     * the grid's chunks of 8 positions are covered by vectors of {@code L} positions.
     */
    public static void additiveFwd(long[] grid, int U, int B, int T, int A, MemorySegment ekt, MemorySegment dk,
                                   MemorySegment v, MemorySegment scores) {
        int nb = ext(grid, 1, B), nu = ext(grid, 2, U);
        int tEnd = (int) Math.min(T, (long) ext(grid, 0, (T + TT - 1) / TT) * TT);
        float[] lanes = new float[L];
        for (int b = 0; b < nb; b++)
            for (int u = 0; u < nu; u++) {
                long e = (long) b * A * T, d = (long) (u * B + b) * A, out = (long) (u * B + b) * T;
                int full = tEnd - tEnd % L;
                additiveFwdRow(A, T, full, ekt, e, dk, d, v, scores, out);
                if (full < tEnd) additiveFwdTail(A, T, full, tEnd, ekt, e, dk, d, v, scores, out, lanes);
            }
    }

    private static void additiveFwdRow(int A, int T, int full, MemorySegment ekt, long e, MemorySegment dk, long d,
                                       MemorySegment v, MemorySegment scores, long out) {
        for (int t = 0; t < full; t += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int a = 0; a < A; a++) {
                FloatVector x = load(ekt, e + (long) a * T + t).add(f(dk, d + a));
                acc = tanh(x).fma(FloatVector.broadcast(S, f(v, a)), acc);
            }
            acc.intoMemorySegment(scores, (out + t) * Float.BYTES, NATIVE);
        }
    }

    /** Positions [t0, tEnd), fewer than a vector, with the lanes gathered into {@code lanes}. */
    private static void additiveFwdTail(int A, int T, int t0, int tEnd, MemorySegment ekt, long e, MemorySegment dk,
                                        long d, MemorySegment v, MemorySegment scores, long out, float[] lanes) {
        int n = tEnd - t0;
        FloatVector acc = FloatVector.zero(S);
        for (int a = 0; a < A; a++) {
            long r = e + (long) a * T + t0;
            for (int k = 0; k < n; k++) lanes[k] = f(ekt, r + k);
            FloatVector x = FloatVector.fromArray(S, lanes, 0).add(f(dk, d + a));
            acc = tanh(x).fma(FloatVector.broadcast(S, f(v, a)), acc);
        }
        acc.intoArray(lanes, 0);
        for (int k = 0; k < n; k++) scores.setAtIndex(F, out + t0 + k, lanes[k]);
    }

    /**
     * {@code attn_scores_additive_bwd}, grid {ceil(A/8), B, U+T}: decoder rows ({@code z < U}) write {@code ddk} and
     * {@code dvpart}, encoder rows ({@code z = U + t}) write {@code dek}; vectors of {@code L} consecutive {@code a},
     * a last partial vector in scalars.
     */
    public static void additiveBwd(long[] grid, int U, int B, int T, int A, MemorySegment ek, MemorySegment dk,
                                   MemorySegment v, MemorySegment ds, MemorySegment ddk, MemorySegment dek,
                                   MemorySegment dvpart) {
        int nb = ext(grid, 1, B), nz = ext(grid, 2, (long) U + T);
        int aEnd = (int) Math.min(A, (long) ext(grid, 0, (A + TT - 1) / TT) * TT);
        int full = aEnd - aEnd % L;
        for (int b = 0; b < nb; b++)
            for (int z = 0; z < nz; z++) {
                if (z < U) {
                    additiveBwdDecoder(z, b, B, T, A, full, ek, dk, v, ds, ddk, dvpart);
                    additiveBwdDecoderTail(z, b, B, T, A, full, aEnd, ek, dk, v, ds, ddk, dvpart);
                } else {
                    additiveBwdEncoder(z - U, b, U, B, T, A, full, ek, dk, v, ds, dek);
                    additiveBwdEncoderTail(z - U, b, U, B, T, A, full, aEnd, ek, dk, v, ds, dek);
                }
            }
    }

    /** {@code ddk[z,b,a] = v[a] sum_t g (1 - th^2)}, {@code dvpart[z,b,a] = sum_t g th} for a in [0, full). */
    private static void additiveBwdDecoder(int z, int b, int B, int T, int A, int full, MemorySegment ek,
                                           MemorySegment dk, MemorySegment v, MemorySegment ds, MemorySegment ddk,
                                           MemorySegment dvpart) {
        long row = (long) z * B + b;
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int a0 = 0; a0 < full; a0 += L) {
            FloatVector dkv = load(dk, row * A + a0);
            FloatVector acc = FloatVector.zero(S), acc2 = acc;
            for (int t = 0; t < T; t++) {
                FloatVector g = FloatVector.broadcast(S, f(ds, row * T + t));
                FloatVector th = tanh(load(ek, ((long) t * B + b) * A + a0).add(dkv));
                acc2 = g.fma(th, acc2);
                acc = g.fma(th.neg().fma(th, one), acc);
            }
            load(v, a0).mul(acc).intoMemorySegment(ddk, (row * A + a0) * Float.BYTES, NATIVE);
            acc2.intoMemorySegment(dvpart, (row * A + a0) * Float.BYTES, NATIVE);
        }
    }

    private static void additiveBwdDecoderTail(int z, int b, int B, int T, int A, int a0, int aEnd, MemorySegment ek,
                                               MemorySegment dk, MemorySegment v, MemorySegment ds, MemorySegment ddk,
                                               MemorySegment dvpart) {
        long row = (long) z * B + b;
        for (int a = a0; a < aEnd; a++) {
            float acc = 0f, acc2 = 0f, dka = f(dk, row * A + a);
            for (int t = 0; t < T; t++) {
                float g = f(ds, row * T + t), th = tanh(f(ek, ((long) t * B + b) * A + a) + dka);
                acc2 += g * th;
                acc += g * (1.0f - th * th);
            }
            ddk.setAtIndex(F, row * A + a, f(v, a) * acc);
            dvpart.setAtIndex(F, row * A + a, acc2);
        }
    }

    /** {@code dek[t,b,a] = v[a] sum_u g (1 - th^2)} for a in [0, full). */
    private static void additiveBwdEncoder(int t, int b, int U, int B, int T, int A, int full, MemorySegment ek,
                                           MemorySegment dk, MemorySegment v, MemorySegment ds, MemorySegment dek) {
        long erow = ((long) t * B + b) * A;
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int a0 = 0; a0 < full; a0 += L) {
            FloatVector ekv = load(ek, erow + a0);
            FloatVector acc = FloatVector.zero(S);
            for (int u = 0; u < U; u++) {
                FloatVector g = FloatVector.broadcast(S, f(ds, ((long) u * B + b) * T + t));
                FloatVector th = tanh(ekv.add(load(dk, ((long) u * B + b) * A + a0)));
                acc = g.fma(th.neg().fma(th, one), acc);
            }
            load(v, a0).mul(acc).intoMemorySegment(dek, (erow + a0) * Float.BYTES, NATIVE);
        }
    }

    private static void additiveBwdEncoderTail(int t, int b, int U, int B, int T, int A, int a0, int aEnd,
                                               MemorySegment ek, MemorySegment dk, MemorySegment v, MemorySegment ds,
                                               MemorySegment dek) {
        long erow = ((long) t * B + b) * A;
        for (int a = a0; a < aEnd; a++) {
            float acc = 0f, eka = f(ek, erow + a);
            for (int u = 0; u < U; u++) {
                float g = f(ds, ((long) u * B + b) * T + t), th = tanh(eka + f(dk, ((long) u * B + b) * A + a));
                acc += g * (1.0f - th * th);
            }
            dek.setAtIndex(F, erow + a, f(v, a) * acc);
        }
    }

    /** {@code masked_softmax_fwd}, grid {B, U}: softmax over valid t, exactly 0 where masked, all 0 with nothing valid. */
    public static void maskedSoftmaxFwd(long[] grid, int U, int B, int T, MemorySegment mask, MemorySegment scores,
                                        MemorySegment weights) {
        int nb = ext(grid, 0, B), nu = ext(grid, 1, U);
        int full = T - T % L;
        FloatVector ninf = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY), zero = FloatVector.zero(S);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long m = (long) b * T, row = ((long) u * B + b) * T;
                FloatVector mx = ninf;
                int t = 0;
                for (; t < full; t += L) mx = mx.max(ninf.blend(load(scores, row + t), valid(mask, m + t)));
                float max = mx.reduceLanes(VectorOperators.MAX);
                for (; t < T; t++) if (mask.getAtIndex(I, m + t) != 0) max = Math.max(max, f(scores, row + t));
                if (max == Float.NEGATIVE_INFINITY && !anyValid(mask, m, T)) {
                    for (t = 0; t < T; t++) weights.setAtIndex(F, row + t, 0f);
                    continue;
                }
                FloatVector sumv = zero;
                for (t = 0; t < full; t += L) {
                    FloatVector e = zero.blend(CpuMath.exp(load(scores, row + t).sub(max)), valid(mask, m + t));
                    e.intoMemorySegment(weights, (row + t) * Float.BYTES, NATIVE);
                    sumv = sumv.add(e);
                }
                float sum = CpuMath.sumLanes(sumv);
                for (; t < T; t++) {
                    float e = mask.getAtIndex(I, m + t) != 0 ? CpuMath.exp(f(scores, row + t) - max) : 0f;
                    weights.setAtIndex(F, row + t, e);
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (t = 0; t < full; t += L) {
                    load(weights, row + t).mul(inv).intoMemorySegment(weights, (row + t) * Float.BYTES, NATIVE);
                }
                for (; t < T; t++) weights.setAtIndex(F, row + t, f(weights, row + t) * inv);
            }
    }

    private static boolean anyValid(MemorySegment mask, long m, int T) {
        for (int t = 0; t < T; t++) if (mask.getAtIndex(I, m + t) != 0) return true;
        return false;
    }

    /** {@code masked_softmax_bwd}, grid {B, U}: {@code ds = mask ? w (dw - sum_t w dw) : 0}. */
    public static void maskedSoftmaxBwd(long[] grid, int U, int B, int T, MemorySegment mask, MemorySegment weights,
                                        MemorySegment dw, MemorySegment ds) {
        int nb = ext(grid, 0, B), nu = ext(grid, 1, U);
        int full = T - T % L;
        FloatVector zero = FloatVector.zero(S);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long m = (long) b * T, row = ((long) u * B + b) * T;
                FloatVector acc = zero;
                int t = 0;
                for (; t < full; t += L) acc = load(weights, row + t).fma(load(dw, row + t), acc);
                float dot = CpuMath.sumLanes(acc);
                for (; t < T; t++) dot += f(weights, row + t) * f(dw, row + t);
                for (t = 0; t < full; t += L) {
                    FloatVector g = load(weights, row + t).mul(load(dw, row + t).sub(dot));
                    zero.blend(g, valid(mask, m + t)).intoMemorySegment(ds, (row + t) * Float.BYTES, NATIVE);
                }
                for (; t < T; t++) {
                    ds.setAtIndex(F, row + t, mask.getAtIndex(I, m + t) != 0 ? f(weights, row + t) * (f(dw, row + t) - dot) : 0f);
                }
            }
    }
}
