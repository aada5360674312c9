package dev.recur.backend.cpu;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link CpuGemm} against a float64 triple loop over odd shapes, every transpose combination, offsets, padded
 * leading dimensions and alpha/beta, on one thread and on two (with the parallel threshold lowered so that
 * small products really split). Error bound per element: {@code 4 (k+2) u (|alpha| sum|a||b| + |beta c|)},
 * the classic float32 dot-product bound with slack, so a wrong index or a lost term fails by orders of magnitude.
 */
class CpuGemmTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final double U = Math.ulp(1.0f) / 2;
    /** A value no correct GEMM writes: marks memory that must stay untouched. */
    private static final float SENTINEL = -12345.5f;

    private static CpuPool pool2;
    private static CpuGemm one;
    private static CpuGemm two;

    @BeforeAll
    static void open() {
        one = new CpuGemm(1);
        pool2 = new CpuPool(2);
        two = new CpuGemm(pool2, false, 1);
    }

    @AfterAll
    static void close() {
        one.close();
        two.close();
        pool2.close();
    }

    private static CpuGemm gemm(int threads) {
        return threads == 1 ? one : two;
    }

    /** One product with its own layout: offsets and leading dimensions padded beyond the row widths. */
    private record Case(boolean ta, boolean tb, int m, int n, int k, float alpha, float beta,
                        int aOff, int lda, int bOff, int ldb, int cOff, int ldc) {
        static Case of(boolean ta, boolean tb, int m, int n, int k, float alpha, float beta, int pad, int off) {
            return new Case(ta, tb, m, n, k, alpha, beta,
                    off, (ta ? m : k) + pad, 2 * off, (tb ? k : n) + 2 * pad, 3 * off, n + pad);
        }

        int aRows() {
            return ta ? k : m;
        }

        int bRows() {
            return tb ? n : k;
        }

        @Override
        public String toString() {
            return (ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + m + " n=" + n + " k=" + k + " alpha=" + alpha
                    + " beta=" + beta + " offsets=" + aOff + "/" + bOff + "/" + cOff + " ld=" + lda + "/" + ldb + "/" + ldc;
        }
    }

    private static void check(CpuGemm g, Case cs, long seed) {
        try (Arena arena = Arena.ofShared()) {
            check(g, cs, seed, arena);
        }
    }

    private static void check(CpuGemm g, Case cs, long seed, Arena arena) {
        SplittableRandom r = new SplittableRandom(seed);
        {
            long aLen = cs.aOff + (long) cs.aRows() * cs.lda + 3;
            long bLen = cs.bOff + (long) cs.bRows() * cs.ldb + 3;
            long cLen = cs.cOff + (long) cs.m * cs.ldc + 3;
            MemorySegment a = arena.allocate(aLen * Float.BYTES, 64);
            MemorySegment b = arena.allocate(bLen * Float.BYTES, 64);
            MemorySegment c = arena.allocate(cLen * Float.BYTES, 64);
            fill(a, aLen, r);
            fill(b, bLen, r);
            for (long i = 0; i < cLen; i++) c.setAtIndex(F, i, SENTINEL);
            for (int i = 0; i < cs.m; i++) {
                for (int j = 0; j < cs.n; j++) {
                    // beta == 0 must ignore C entirely, NaN included.
                    c.setAtIndex(F, cs.cOff + (long) i * cs.ldc + j, cs.beta == 0f ? Float.NaN : (float) (r.nextDouble() * 2 - 1));
                }
            }
            float[] c0 = c.toArray(F);
            g.gemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a, cs.aOff, cs.lda, b, cs.bOff, cs.ldb,
                    cs.beta, c, cs.cOff, cs.ldc);
            boolean[] inside = new boolean[(int) cLen];
            for (int i = 0; i < cs.m; i++) {
                for (int j = 0; j < cs.n; j++) {
                    int ci = cs.cOff + i * cs.ldc + j;
                    inside[ci] = true;
                    double sum = 0, mag = 0;
                    for (int p = 0; p < cs.k; p++) {
                        double av = a.getAtIndex(F, cs.ta ? cs.aOff + (long) p * cs.lda + i : cs.aOff + (long) i * cs.lda + p);
                        double bv = b.getAtIndex(F, cs.tb ? cs.bOff + (long) j * cs.ldb + p : cs.bOff + (long) p * cs.ldb + j);
                        sum += av * bv;
                        mag += Math.abs(av * bv);
                    }
                    double old = cs.beta == 0f ? 0 : c0[ci];
                    double want = cs.alpha * sum + cs.beta * old;
                    double tol = 4 * (cs.k + 2) * U * (Math.abs(cs.alpha) * mag + Math.abs(cs.beta * old)) + 1e-30;
                    double got = c.getAtIndex(F, ci);
                    if (!(Math.abs(got - want) <= tol)) {
                        fail(cs + ": C[" + i + "][" + j + "] expected " + want + " got " + got + " (tolerance " + tol + ")");
                    }
                }
            }
            for (int i = 0; i < cLen; i++) {
                if (!inside[i] && c.getAtIndex(F, i) != SENTINEL) {
                    fail(cs + ": C memory at element " + i + " outside the matrix changed from " + SENTINEL
                            + " to " + c.getAtIndex(F, i));
                }
            }
        }
    }

    private static void fill(MemorySegment s, long len, SplittableRandom r) {
        for (long i = 0; i < len; i++) s.setAtIndex(F, i, (float) (r.nextDouble() * 2 - 1));
    }

    private static final int[] ODD_SIZES = {1, 2, 3, 5, 7, 8, 9, 11, 13, 15, 16, 17, 23, 24, 31, 33, 41, 47, 55, 63, 64, 65, 69, 70};
    private static final float[][] ALPHA_BETA = {{1f, 0f}, {1f, 1f}, {-0.5f, 2f}, {0.75f, -1f}, {2f, 0f}};

    @ParameterizedTest(name = "threads={0}")
    @ValueSource(ints = {1, 2})
    void matchesFloat64OverOddShapesAllTransposes(int threads) {
        SplittableRandom r = new SplittableRandom(17 + threads);
        int cases = 0;
        for (int combo = 0; combo < 4; combo++) {
            boolean ta = (combo & 1) != 0, tb = (combo & 2) != 0;
            for (int rep = 0; rep < 70; rep++) {
                int m = ODD_SIZES[r.nextInt(ODD_SIZES.length)];
                int n = ODD_SIZES[r.nextInt(ODD_SIZES.length)];
                int k = ODD_SIZES[r.nextInt(ODD_SIZES.length)];
                float[] ab = ALPHA_BETA[r.nextInt(ALPHA_BETA.length)];
                check(gemm(threads), Case.of(ta, tb, m, n, k, ab[0], ab[1], r.nextInt(4), r.nextInt(6)), r.nextLong());
                cases++;
            }
        }
        assertEquals(280, cases);
    }

    @ParameterizedTest(name = "threads={0}")
    @ValueSource(ints = {1, 2})
    void everyTileEdgeAtEveryTranspose(int threads) {
        // m crosses MR and the small-M limit, n crosses the two-vector tile width, k crosses the vector width.
        int[] ms = {1, CpuGemm.MR - 1, CpuGemm.MR, CpuGemm.MR + 1, CpuGemm.SMALL_M, CpuGemm.SMALL_M + 1};
        int[] ns = {1, CpuGemm.NR - 1, CpuGemm.NR, CpuGemm.NR + 1, 2 * CpuGemm.NR + 3};
        int[] ks = {1, 7, 8, 9, 17};
        long seed = 1;
        for (int combo = 0; combo < 4; combo++) {
            for (int m : ms) for (int n : ns) for (int k : ks) {
                check(gemm(threads), Case.of((combo & 1) != 0, (combo & 2) != 0, m, n, k, 1f, 1f, 1, 1), seed++);
            }
        }
    }

    @ParameterizedTest(name = "threads={0}")
    @ValueSource(ints = {1, 2})
    void blockingOverKMAndN(int threads) {
        // k > KC (two depth slices, the second accumulating onto the first), m > MC (several row blocks),
        // n > NC, all with B packed whole into the scratch; and the RNN per-step shapes on the small-M path.
        for (int combo = 0; combo < 4; combo++) {
            boolean ta = (combo & 1) != 0, tb = (combo & 2) != 0;
            check(gemm(threads), Case.of(ta, tb, 2 * CpuGemm.MC + 7, 37, CpuGemm.KC + 45, 0.5f, -1f, 2, 3), 100 + combo);
            check(gemm(threads), Case.of(ta, tb, CpuGemm.SMALL_M + 3, CpuGemm.NC + 21, 3, 1f, 0f, 0, 1), 200 + combo);
        }
        check(gemm(threads), Case.of(false, true, 32, 1024, 256, 1f, 1f, 0, 0), 300);
        check(gemm(threads), Case.of(false, false, 32, 256, 1024, 1f, 0f, 0, 0), 301);
        check(gemm(threads), Case.of(false, true, 7, 259, CpuGemm.KC + 3, 1f, 1f, 3, 2), 302);
    }

    @ParameterizedTest(name = "threads={0}")
    @ValueSource(ints = {1, 2})
    void productsTooLargeToPackWholeGoSliceBySlice(int threads) {
        // With no whole-B scratch every packed product takes the KC x NC slice path: depth slices accumulating,
        // two column slices, several row blocks, every transpose.
        try (CpuPool pool = new CpuPool(threads)) {
            CpuGemm sliced = new CpuGemm(pool, false, 1, 0);
            for (int combo = 0; combo < 4; combo++) {
                boolean ta = (combo & 1) != 0, tb = (combo & 2) != 0;
                check(sliced, Case.of(ta, tb, 2 * CpuGemm.MC + 7, 37, CpuGemm.KC + 45, 0.5f, -1f, 2, 3), 400 + combo);
                check(sliced, Case.of(ta, tb, CpuGemm.SMALL_M + 3, CpuGemm.NC + 21, 3, 1f, 0f, 0, 1), 500 + combo);
            }
        }
    }

    @Test
    void alphaZeroOrEmptyKScalesC() {
        check(one, Case.of(false, false, 5, 9, 0, 1f, 0.5f, 1, 2), 7);
        check(one, Case.of(true, true, 5, 9, 4, 0f, -2f, 1, 2), 8);
        check(one, Case.of(false, true, 5, 9, 0, 1f, 0f, 0, 0), 9);
    }

    @Test
    void emptyMOrNTouchesNothing() {
        check(two, Case.of(false, false, 0, 9, 4, 1f, 1f, 1, 2), 10);
        check(two, Case.of(true, false, 9, 0, 4, 1f, 1f, 1, 2), 11);
    }

    @Test
    void confinedSegmentsRunOnTheCallingThread() {
        // The workers may not touch a confined arena's memory; the product must still be complete and right.
        try (Arena arena = Arena.ofConfined()) {
            check(two, Case.of(false, true, 32, 64, 40, 1f, 1f, 1, 1), 12, arena);
            check(two, Case.of(true, false, 80, 64, 40, 1f, 0f, 1, 1), 13, arena);
        }
    }

    @Test
    void worksOnHeapSegments() {
        float[] a = {1, 2, 3, 4, 5, 6};       // [2,3]
        float[] b = {1, 0, 0, 1, 1, 1};       // [3,2]
        float[] c = new float[4];
        one.gemm(false, false, 2, 2, 3, 1f, MemorySegment.ofArray(a), 0, 3, MemorySegment.ofArray(b), 0, 2,
                0f, MemorySegment.ofArray(c), 0, 2);
        assertEquals(4f, c[0], "C[0][0]");
        assertEquals(5f, c[1], "C[0][1]");
        assertEquals(10f, c[2], "C[1][0]");
        assertEquals(11f, c[3], "C[1][1]");
    }

    @Test
    void badArgumentsNameTheArgumentBeforeWriting() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(12L * Float.BYTES);
            MemorySegment b = arena.allocate(12L * Float.BYTES);
            MemorySegment c = arena.allocate(9L * Float.BYTES);
            for (int i = 0; i < 9; i++) c.setAtIndex(F, i, SENTINEL);
            assertMessage(() -> one.gemm(false, false, -1, 3, 4, 1f, a, 0, 4, b, 0, 3, 0f, c, 0, 3), "m: expected >= 0, got -1");
            assertMessage(() -> one.gemm(false, false, 3, 3, 4, 1f, a, 0, 3, b, 0, 3, 0f, c, 0, 3), "lda: expected >= 4");
            assertMessage(() -> one.gemm(false, true, 3, 3, 4, 1f, a, 0, 4, b, 0, 3, 0f, c, 0, 3), "ldb: expected >= 4");
            assertMessage(() -> one.gemm(false, false, 3, 3, 4, 1f, a, 1, 4, b, 0, 3, 0f, c, 0, 3),
                    "a: a 3x4 matrix at offset 1 with leading dimension 4 needs 13 floats, the segment holds 12");
            assertMessage(() -> one.gemm(false, false, 3, 3, 4, 1f, a, 0, 4, b, 0, 3, 0f, c, 0, 4), "c: a 3x3 matrix");
            assertMessage(() -> one.gemm(false, false, 3, 3, 4, 1f, a, 0, 4, b, -1, 3, 0f, c, 0, 3), "bOffset: expected >= 0, got -1");
            assertMessage(() -> one.gemm(false, false, 3, 3, 4, 1f, null, 0, 4, b, 0, 3, 0f, c, 0, 3), "a: must not be null");
            for (int i = 0; i < 9; i++) assertEquals(SENTINEL, c.getAtIndex(F, i), "C[" + i + "] after a refused call");
        }
    }

    private static void assertMessage(Runnable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should contain '" + expected + "'");
    }
}
