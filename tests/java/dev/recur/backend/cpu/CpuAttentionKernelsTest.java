package dev.recur.backend.cpu;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The Java attention kernels for the cpu backend against the float64 equations of
 * {@code kernels/common/attention.h}, with sizes off the chunk width of 8 and grids rounded up past the
 * extents (segments sized exactly, so a stray index throws).
 */
class CpuAttentionKernelsTest {
    private static final double TOL = 2e-5;

    private static MemorySegment floats(Arena arena, float[] v) {
        MemorySegment m = arena.allocate(ValueLayout.JAVA_FLOAT, v.length);
        for (int i = 0; i < v.length; i++) m.setAtIndex(ValueLayout.JAVA_FLOAT, i, v[i]);
        return m;
    }

    private static MemorySegment ints(Arena arena, int[] v) {
        MemorySegment m = arena.allocate(ValueLayout.JAVA_INT, v.length);
        for (int i = 0; i < v.length; i++) m.setAtIndex(ValueLayout.JAVA_INT, i, v[i]);
        return m;
    }

    private static float[] random(SplittableRandom r, int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) r.nextDouble(-scale, scale);
        return f;
    }

    private static void check(String name, int i, double expected, MemorySegment got) {
        double g = got.getAtIndex(ValueLayout.JAVA_FLOAT, i);
        assertEquals(expected, g, TOL * Math.max(1, Math.abs(expected)), name + "[" + i + "]");
    }

    @Test
    void tanhIsWithinFourTenthsOfAMillionthEverywhere() {
        double worst = 0;
        for (int i = -2_000_000; i <= 2_000_000; i++) {
            float x = i * 1e-5f;
            worst = Math.max(worst, Math.abs(CpuAttentionKernels.tanh(x) - Math.tanh(x)));
        }
        for (float x : new float[] {-1e30f, -50f, 50f, 1e30f, Float.MIN_VALUE, -0f}) {
            worst = Math.max(worst, Math.abs(CpuAttentionKernels.tanh(x) - Math.tanh(x)));
        }
        assertEquals(0.0, worst, 4e-7, "max |tanh error| on [-20, 20] and extremes");
    }

    @Test
    void additiveForwardAndBackward() {
        // Below one vector, and several vectors with a partial one at the end (both kernels' tails).
        additive(3, 2, 11, 13, new long[] {16, 4, 5}, new long[] {2, 2, 3 + 11});
        additive(2, 3, 45, 37, new long[] {6, 3, 2}, new long[] {5, 3, 2 + 45});
    }

    private static void additive(int U, int B, int T, int A, long[] fwdGrid, long[] bwdGrid) {
        SplittableRandom r = new SplittableRandom(4);
        float[] ek = random(r, T * B * A, 1), dk = random(r, U * B * A, 1), v = random(r, A, 1), ds = random(r, U * B * T, 1);
        float[] ekt = new float[B * A * T];
        for (int t = 0; t < T; t++) for (int b = 0; b < B; b++) for (int a = 0; a < A; a++) ekt[(b * A + a) * T + t] = ek[(t * B + b) * A + a];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sc = arena.allocate(ValueLayout.JAVA_FLOAT, U * B * T);
            CpuAttentionKernels.additiveFwd(fwdGrid, U, B, T, A, floats(arena, ekt), floats(arena, dk), floats(arena, v), sc);
            MemorySegment ddk = arena.allocate(ValueLayout.JAVA_FLOAT, U * B * A), dek = arena.allocate(ValueLayout.JAVA_FLOAT, T * B * A),
                    dvp = arena.allocate(ValueLayout.JAVA_FLOAT, U * B * A);
            CpuAttentionKernels.additiveBwd(bwdGrid, U, B, T, A, floats(arena, ek), floats(arena, dk), floats(arena, v),
                    floats(arena, ds), ddk, dek, dvp);
            double[] eddk = new double[U * B * A], edek = new double[T * B * A], edvp = new double[U * B * A];
            for (int u = 0; u < U; u++)
                for (int b = 0; b < B; b++)
                    for (int t = 0; t < T; t++) {
                        double s = 0, g = ds[(u * B + b) * T + t];
                        for (int a = 0; a < A; a++) {
                            double th = Math.tanh((double) ek[(t * B + b) * A + a] + dk[(u * B + b) * A + a]);
                            s += v[a] * th;
                            eddk[(u * B + b) * A + a] += v[a] * g * (1 - th * th);
                            edvp[(u * B + b) * A + a] += g * th;
                            edek[(t * B + b) * A + a] += v[a] * g * (1 - th * th);
                        }
                        check("scores", (u * B + b) * T + t, s, sc);
                    }
            for (int i = 0; i < eddk.length; i++) {
                check("ddk", i, eddk[i], ddk);
                check("dvpart", i, edvp[i], dvp);
            }
            for (int i = 0; i < edek.length; i++) check("dek", i, edek[i], dek);
        }
    }

    @Test
    void maskedSoftmaxForwardAndBackward() {
        // T = 7 and 19: inside one vector, and two whole vectors of 8 plus a tail; row 3 has holes.
        softmax(7, new int[] {7, 3, 0}, -1);
        softmax(19, new int[] {19, 11, 0, 17}, 9);
    }

    private static void softmax(int T, int[] lengths, int hole) {
        int U = 2, B = lengths.length;
        int[] mask = new int[B * T];
        for (int b = 0; b < B; b++) for (int t = 0; t < lengths[b]; t++) mask[b * T + t] = 1;
        if (hole >= 0) {
            mask[(B - 1) * T + hole] = 0;
            mask[(B - 1) * T] = 0;
        }
        SplittableRandom r = new SplittableRandom(5);
        float[] s = random(r, U * B * T, 4), dw = random(r, U * B * T, 1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = ints(arena, mask), w = arena.allocate(ValueLayout.JAVA_FLOAT, U * B * T),
                    ds = arena.allocate(ValueLayout.JAVA_FLOAT, U * B * T);
            CpuAttentionKernels.maskedSoftmaxFwd(new long[] {16, 2}, U, B, T, m, floats(arena, s), w);
            CpuAttentionKernels.maskedSoftmaxBwd(new long[] {16, 2}, U, B, T, m, w, floats(arena, dw), ds);
            for (int u = 0; u < U; u++)
                for (int b = 0; b < B; b++) {
                    int row = (u * B + b) * T;
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int t = 0; t < T; t++) if (mask[b * T + t] != 0) max = Math.max(max, s[row + t]);
                    for (int t = 0; t < T; t++) if (mask[b * T + t] != 0) sum += Math.exp(s[row + t] - max);
                    double[] we = new double[T];
                    double dot = 0;
                    for (int t = 0; t < T; t++) {
                        if (mask[b * T + t] == 0) continue;
                        we[t] = Math.exp(s[row + t] - max) / sum;
                        dot += we[t] * dw[row + t];
                    }
                    for (int t = 0; t < T; t++) {
                        boolean ok = mask[b * T + t] != 0;
                        check("weights", row + t, we[t], w);
                        check("ds", row + t, ok ? we[t] * (dw[row + t] - dot) : 0, ds);
                        if (!ok) {
                            assertEquals(0f, w.getAtIndex(ValueLayout.JAVA_FLOAT, row + t), "weights[" + (row + t) + "] masked");
                            assertEquals(0f, ds.getAtIndex(ValueLayout.JAVA_FLOAT, row + t), "ds[" + (row + t) + "] masked");
                        }
                    }
                }
        }
    }
}
