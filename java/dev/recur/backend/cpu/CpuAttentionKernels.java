package dev.recur.backend.cpu;

import dev.recur.schedule.AttentionKernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The attention kernels of {@link AttentionKernels} as plain Java over the buffers' memory segments (native
 * order, like every {@code CpuBuffer}), for the {@code cpu} backend. Each method follows its
 * {@code kernels/common/attention.h} body line by line, covering the work items inside both the launch grid
 * ({@code grid}, padded to 3 extents) and the extents given as arguments, so a rounded-up grid is harmless.
 * Scalar loops in the kernels' own summation order; the cpu backend may replace them with vector code.
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

    private static void set(MemorySegment m, long i, float v) {
        m.setAtIndex(F, i, v);
    }

    private static int ext(long[] grid, int dim, long extent) {
        return (int) Math.max(0, Math.min(grid.length > dim ? grid[dim] : 1, extent));
    }

    /** {@code attn_scores_additive_fwd}, grid {ceil(T/8), B, U}: {@code scores[u,b,t] = sum_a v[a] tanh(ekt[b,a,t] + dk[u,b,a])}. */
    public static void additiveFwd(long[] grid, int U, int B, int T, int A, MemorySegment ekt, MemorySegment dk,
                                   MemorySegment v, MemorySegment scores) {
        int nc = ext(grid, 0, (T + TT - 1) / TT), nb = ext(grid, 1, B), nu = ext(grid, 2, U);
        float[] acc = new float[TT];
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++)
                for (int c = 0; c < nc; c++) {
                    int t0 = c * TT, n = Math.min(TT, T - t0);
                    java.util.Arrays.fill(acc, 0f);
                    long e = (long) b * A * T + t0, d = (long) (u * B + b) * A;
                    for (int a = 0; a < A; a++) {
                        float da = f(dk, d + a), va = f(v, a);
                        for (int k = 0; k < n; k++) acc[k] += va * tanh(f(ekt, e + (long) a * T + k) + da);
                    }
                    long out = (long) (u * B + b) * T + t0;
                    for (int k = 0; k < n; k++) set(scores, out + k, acc[k]);
                }
    }

    /**
     * {@code attn_scores_additive_bwd}, grid {ceil(A/8), B, U+T}: decoder rows ({@code z < U}) write {@code ddk} and
     * {@code dvpart}, encoder rows ({@code z = U + t}) write {@code dek}.
     */
    public static void additiveBwd(long[] grid, int U, int B, int T, int A, MemorySegment ek, MemorySegment dk,
                                   MemorySegment v, MemorySegment ds, MemorySegment ddk, MemorySegment dek,
                                   MemorySegment dvpart) {
        int nc = ext(grid, 0, (A + TT - 1) / TT), nb = ext(grid, 1, B), nz = ext(grid, 2, (long) U + T);
        float[] acc = new float[TT], acc2 = new float[TT];
        for (int z = 0; z < nz; z++)
            for (int b = 0; b < nb; b++)
                for (int c = 0; c < nc; c++) {
                    int a0 = c * TT, n = Math.min(TT, A - a0);
                    java.util.Arrays.fill(acc, 0f);
                    java.util.Arrays.fill(acc2, 0f);
                    if (z < U) {
                        long row = (long) z * B + b;
                        for (int t = 0; t < T; t++) {
                            float g = f(ds, row * T + t);
                            long e = ((long) t * B + b) * A + a0;
                            for (int k = 0; k < n; k++) {
                                float th = tanh(f(ek, e + k) + f(dk, row * A + a0 + k));
                                acc2[k] += g * th;
                                acc[k] += g * (1.0f - th * th);
                            }
                        }
                        for (int k = 0; k < n; k++) {
                            set(ddk, row * A + a0 + k, f(v, a0 + k) * acc[k]);
                            set(dvpart, row * A + a0 + k, acc2[k]);
                        }
                    } else {
                        int t = z - U;
                        long erow = ((long) t * B + b) * A + a0;
                        for (int u = 0; u < U; u++) {
                            float g = f(ds, ((long) u * B + b) * T + t);
                            long d = ((long) u * B + b) * A + a0;
                            for (int k = 0; k < n; k++) {
                                float th = tanh(f(ek, erow + k) + f(dk, d + k));
                                acc[k] += g * (1.0f - th * th);
                            }
                        }
                        for (int k = 0; k < n; k++) set(dek, erow + k, f(v, a0 + k) * acc[k]);
                    }
                }
    }

    /** {@code masked_softmax_fwd}, grid {B, U}: softmax over valid t, exactly 0 where masked, all 0 with nothing valid. */
    public static void maskedSoftmaxFwd(long[] grid, int U, int B, int T, MemorySegment mask, MemorySegment scores,
                                        MemorySegment weights) {
        int nb = ext(grid, 0, B), nu = ext(grid, 1, U);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long m = (long) b * T, row = ((long) u * B + b) * T;
                boolean any = false;
                float mx = 0f;
                for (int t = 0; t < T; t++) {
                    float s = f(scores, row + t);
                    if (mask.getAtIndex(I, m + t) != 0 && (!any || s > mx)) {
                        mx = s;
                        any = true;
                    }
                }
                if (!any) {
                    for (int t = 0; t < T; t++) set(weights, row + t, 0f);
                    continue;
                }
                float sum = 0f;
                for (int t = 0; t < T; t++) {
                    float e = mask.getAtIndex(I, m + t) != 0 ? (float) Math.exp(f(scores, row + t) - mx) : 0f;
                    set(weights, row + t, e);
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (int t = 0; t < T; t++) set(weights, row + t, f(weights, row + t) * inv);
            }
    }

    /** {@code masked_softmax_bwd}, grid {B, U}: {@code ds = mask ? w (dw - sum_t w dw) : 0}. */
    public static void maskedSoftmaxBwd(long[] grid, int U, int B, int T, MemorySegment mask, MemorySegment weights,
                                        MemorySegment dw, MemorySegment ds) {
        int nb = ext(grid, 0, B), nu = ext(grid, 1, U);
        for (int u = 0; u < nu; u++)
            for (int b = 0; b < nb; b++) {
                long m = (long) b * T, row = ((long) u * B + b) * T;
                float dot = 0f;
                for (int t = 0; t < T; t++) dot += f(weights, row + t) * f(dw, row + t);
                for (int t = 0; t < T; t++) {
                    set(ds, row + t, mask.getAtIndex(I, m + t) != 0 ? f(weights, row + t) * (f(dw, row + t) - dot) : 0f);
                }
            }
    }
}
