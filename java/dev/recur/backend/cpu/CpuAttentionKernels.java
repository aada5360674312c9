package dev.recur.backend.cpu;

import dev.recur.schedule.AttentionKernels;

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

    private static FloatVector load(MemorySegment m, long i, VectorMask<Float> in) {
        return FloatVector.fromMemorySegment(S, m, i * Float.BYTES, NATIVE, in);
    }

    private static void store(FloatVector v, MemorySegment m, long i, VectorMask<Float> in) {
        v.intoMemorySegment(m, i * Float.BYTES, NATIVE, in);
    }

    /** Lanes of {@code mask[i .. i+L)} that are nonzero, among those inside {@code in}. */
    private static VectorMask<Float> valid(MemorySegment mask, long i, VectorMask<Float> in) {
        return IntVector.fromMemorySegment(SI, mask, i * Integer.BYTES, NATIVE, in.cast(SI))
                .compare(VectorOperators.NE, 0).cast(S).and(in);
    }

    /**
     * {@code attn_scores_additive_fwd}, grid {ceil(T/8), B, U}: {@code scores[u,b,t] = sum_a v[a] tanh(ekt[b,a,t] + dk[u,b,a])}.
     * The grid's chunks of 8 positions are covered by vectors of {@code L} positions (any multiple of lanes), four at a
     * time so that four tanh chains overlap.
     */
    public static void additiveFwd(long[] grid, int U, int B, int T, int A, MemorySegment ekt, MemorySegment dk,
                                   MemorySegment v, MemorySegment scores) {
        int nb = ext(grid, 1, B), nu = ext(grid, 2, U);
        int tEnd = (int) Math.min(T, (long) ext(grid, 0, (T + TT - 1) / TT) * TT);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long e = (long) b * A * T, d = (long) (u * B + b) * A, out = (long) (u * B + b) * T;
                int t = 0;
                for (; t + 4 * L <= tEnd; t += 4 * L) {
                    FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
                    for (int a = 0; a < A; a++) {
                        float da = f(dk, d + a);
                        FloatVector va = FloatVector.broadcast(S, f(v, a));
                        long r = e + (long) a * T + t;
                        s0 = tanh(load(ekt, r).add(da)).fma(va, s0);
                        s1 = tanh(load(ekt, r + L).add(da)).fma(va, s1);
                        s2 = tanh(load(ekt, r + 2 * L).add(da)).fma(va, s2);
                        s3 = tanh(load(ekt, r + 3 * L).add(da)).fma(va, s3);
                    }
                    s0.intoMemorySegment(scores, (out + t) * Float.BYTES, NATIVE);
                    s1.intoMemorySegment(scores, (out + t + L) * Float.BYTES, NATIVE);
                    s2.intoMemorySegment(scores, (out + t + 2 * L) * Float.BYTES, NATIVE);
                    s3.intoMemorySegment(scores, (out + t + 3 * L) * Float.BYTES, NATIVE);
                }
                for (; t < tEnd; t += L) {
                    VectorMask<Float> in = S.indexInRange(t, tEnd);
                    FloatVector s0 = FloatVector.zero(S);
                    for (int a = 0; a < A; a++) {
                        FloatVector x = load(ekt, e + (long) a * T + t, in).add(f(dk, d + a));
                        s0 = tanh(x).fma(FloatVector.broadcast(S, f(v, a)), s0);
                    }
                    store(s0, scores, out + t, in);
                }
            }
    }

    /**
     * {@code attn_scores_additive_bwd}, grid {ceil(A/8), B, U+T}: decoder rows ({@code z < U}) write {@code ddk} and
     * {@code dvpart}, encoder rows ({@code z = U + t}) write {@code dek}; vectors of {@code L} consecutive {@code a}.
     */
    public static void additiveBwd(long[] grid, int U, int B, int T, int A, MemorySegment ek, MemorySegment dk,
                                   MemorySegment v, MemorySegment ds, MemorySegment ddk, MemorySegment dek,
                                   MemorySegment dvpart) {
        int nb = ext(grid, 1, B), nz = ext(grid, 2, (long) U + T);
        int aEnd = (int) Math.min(A, (long) ext(grid, 0, (A + TT - 1) / TT) * TT);
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int z = 0; z < nz; z++)
            for (int b = 0; b < nb; b++)
                for (int a0 = 0; a0 < aEnd; a0 += L) {
                    VectorMask<Float> in = S.indexInRange(a0, aEnd);
                    FloatVector acc = FloatVector.zero(S), acc2 = acc;
                    if (z < U) {
                        long row = (long) z * B + b;
                        FloatVector dkv = load(dk, row * A + a0, in);
                        for (int t = 0; t < T; t++) {
                            FloatVector g = FloatVector.broadcast(S, f(ds, row * T + t));
                            FloatVector th = tanh(load(ek, ((long) t * B + b) * A + a0, in).add(dkv));
                            acc2 = g.fma(th, acc2);
                            acc = g.fma(th.neg().fma(th, one), acc);
                        }
                        store(load(v, a0, in).mul(acc), ddk, row * A + a0, in);
                        store(acc2, dvpart, row * A + a0, in);
                    } else {
                        int t = z - U;
                        long erow = ((long) t * B + b) * A + a0;
                        FloatVector ekv = load(ek, erow, in);
                        for (int u = 0; u < U; u++) {
                            FloatVector g = FloatVector.broadcast(S, f(ds, ((long) u * B + b) * T + t));
                            FloatVector th = tanh(ekv.add(load(dk, ((long) u * B + b) * A + a0, in)));
                            acc = g.fma(th.neg().fma(th, one), acc);
                        }
                        store(load(v, a0, in).mul(acc), dek, erow, in);
                    }
                }
    }

    /** {@code masked_softmax_fwd}, grid {B, U}: softmax over valid t, exactly 0 where masked, all 0 with nothing valid. */
    public static void maskedSoftmaxFwd(long[] grid, int U, int B, int T, MemorySegment mask, MemorySegment scores,
                                        MemorySegment weights) {
        int nb = ext(grid, 0, B), nu = ext(grid, 1, U);
        FloatVector ninf = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY), zero = FloatVector.zero(S);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long m = (long) b * T, row = ((long) u * B + b) * T;
                FloatVector mx = ninf;
                boolean any = false;
                for (int t = 0; t < T; t += L) {
                    VectorMask<Float> ok = valid(mask, m + t, S.indexInRange(t, T));
                    any |= ok.anyTrue();
                    mx = mx.max(ninf.blend(load(scores, row + t, ok), ok));
                }
                if (!any) {
                    for (int t = 0; t < T; t += L) store(zero, weights, row + t, S.indexInRange(t, T));
                    continue;
                }
                float max = mx.reduceLanes(VectorOperators.MAX);
                FloatVector sum = zero;
                for (int t = 0; t < T; t += L) {
                    VectorMask<Float> in = S.indexInRange(t, T), ok = valid(mask, m + t, in);
                    FloatVector e = zero.blend(CpuMath.exp(load(scores, row + t, in).sub(max)), ok);
                    store(e, weights, row + t, in);
                    sum = sum.add(e);
                }
                float inv = 1.0f / sum.reduceLanes(VectorOperators.ADD);
                for (int t = 0; t < T; t += L) {
                    VectorMask<Float> in = S.indexInRange(t, T);
                    store(load(weights, row + t, in).mul(inv), weights, row + t, in);
                }
            }
    }

    /** {@code masked_softmax_bwd}, grid {B, U}: {@code ds = mask ? w (dw - sum_t w dw) : 0}. */
    public static void maskedSoftmaxBwd(long[] grid, int U, int B, int T, MemorySegment mask, MemorySegment weights,
                                        MemorySegment dw, MemorySegment ds) {
        int nb = ext(grid, 0, B), nu = ext(grid, 1, U);
        FloatVector zero = FloatVector.zero(S);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long m = (long) b * T, row = ((long) u * B + b) * T;
                FloatVector acc = zero;
                for (int t = 0; t < T; t += L) {
                    VectorMask<Float> in = S.indexInRange(t, T);
                    acc = load(weights, row + t, in).fma(load(dw, row + t, in), acc);
                }
                float dot = acc.reduceLanes(VectorOperators.ADD);
                for (int t = 0; t < T; t += L) {
                    VectorMask<Float> in = S.indexInRange(t, T), ok = valid(mask, m + t, in);
                    FloatVector g = load(weights, row + t, in).mul(load(dw, row + t, in).sub(dot));
                    store(zero.blend(g, ok), ds, row + t, in);
                }
            }
    }
}
