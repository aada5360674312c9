package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sample_rows} on every device backend against {@link ReferenceTrainKernels#sampleRows}: the same token per row
 * (the uniform is the same integer-made number everywhere), except where the float64 position {@code u} of the draw
 * lies within float32 rounding of the device token's cumulative-probability interval, the documented boundary case,
 * which is checked rather than skipped; the untempered log-probabilities within float32 tolerance; reproducible and
 * keyed by (seed, step); a top-k cut from {@code topk_rows}' K-th value (ties kept); and a chi-square test that many
 * draws follow {@code softmax(x/T)} for three temperatures, and top-3 its renormalised head (fixed seed, so it cannot
 * flake).
 */
class SampleRowsTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /**
     * The device's token {@code got} of row {@code r} is the reference's, or {@code u} is within {@code tol} of its
     * interval of the float64 cumulative probabilities (tokens below {@code cut} weigh nothing).
     */
    private static boolean consistent(double[] x, int r, int v, double t, double cut, double u, int got, double tol) {
        double m = Double.NEGATIVE_INFINITY, s = 0, below = 0;
        double[] e = new double[v];
        for (int j = 0; j < v; j++) m = Math.max(m, x[r * v + j]);
        for (int j = 0; j < v; j++) s += e[j] = x[r * v + j] < cut ? 0 : Math.exp((x[r * v + j] - m) / t);
        for (int j = 0; j < got; j++) below += e[j] / s;
        double upto = below + e[got] / s;
        return e[got] > 0 && u >= below - tol && u < upto + tol;
    }

    /** The K-th largest of row {@code r} (with multiplicity), or -infinity for no cut. */
    private static double kth(double[] x, int r, int v, int k) {
        if (k == 0) return Double.NEGATIVE_INFINITY;
        double[] row = Arrays.copyOfRange(x, r * v, (r + 1) * v);
        Arrays.sort(row);
        return row[v - k];
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom rnd = new SplittableRandom(3);
        int n = 400, v = 97;
        double[] x = TrainTestSupport.random(rnd, n * v, 4);
        for (int j = 0; j < v; j++) x[j] = j == 40 ? 30 : 0;   // row 0: one token carries all the mass
        for (int j = 0; j < v; j++) x[v + j] = (j % 3) - 1;       // row 1: many ties at the K-th value
        int boundary = 0, draws = 0;
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(x), idx = bufs.i32(n, -9), logp = bufs.f32(n, 0);
            for (int k : new int[] {0, 5}) {
                DeviceBuffer vals = bufs.f32(n * Math.max(k, 1), 0), kidx = bufs.i32(n * Math.max(k, 1), 0);
                if (k > 0) TrainKernels.topkRows(be, n, v, k, dx, vals, kidx);
                for (double t : new double[] {0.5, 1, 1.7}) {
                    for (int step : new int[] {0, 1, 1000}) {
                        long seed = 0x1234_5678_9ABC_DEF0L + step;
                        ReferenceTrainKernels.Samples want = ReferenceTrainKernels.sampleRows(n, v, t, seed, step, x, k);
                        if (k == 0) TrainKernels.sampleRows(be, n, v, (float) t, seed, step, dx, idx, logp);
                        else TrainKernels.sampleRows(be, n, v, (float) t, seed, step, dx, vals, k - 1, k, idx, logp);
                        int[] got = bufs.geti(idx, n);
                        double[] gotLogp = bufs.get(logp, n);
                        assertEquals(40, got[0], "row 0 has one token of probability 1");
                        double tol = 8.0 * v * 0x1.0p-24;
                        for (int r = 0; r < n; r++, draws++) {
                            String what = backend + " top-" + k + " T=" + t + " step " + step + " row " + r;
                            double cut = kth(x, r, v, k);
                            assertTrue(x[r * v + got[r]] >= cut, what + ": token " + got[r] + " below the top-" + k + " cut");
                            if (got[r] != want.idx()[r]) {
                                boundary++;
                                double u = TrainKernels.sampleUniform(seed, step, r);
                                assertTrue(got[r] >= 0 && got[r] < v, what + ": token " + got[r]);
                                assertTrue(consistent(x, r, v, t, cut, u, got[r], tol),
                                        what + ": token " + got[r] + " vs the reference's " + want.idx()[r] + " and u = " + u
                                                + " is not within " + tol + " of its cumulative interval");
                            }
                            double m = Arrays.stream(x, r * v, (r + 1) * v).max().orElseThrow(), s = 0;
                            for (int j = 0; j < v; j++) s += Math.exp(x[r * v + j] - m);
                            double lp = x[r * v + got[r]] - m - Math.log(s);
                            assertEquals(lp, gotLogp[r], 1e-5 * Math.max(1, Math.abs(lp)), what + " logp");
                        }
                    }
                }
            }
        }
        System.out.printf("%s: %d of %d draws off the reference's token (boundary cases)%n", backend, boundary, draws);
        // 7,200 draws: boundary cases are rare (about V * 2^-24 of the mass each), so a handful at most.
        assertTrue(boundary <= 5, backend + ": " + boundary + " of " + draws + " rows off the reference's token");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void reproducibleAndKeyedBySeedAndStep(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        int n = 64, v = 500;
        double[] x = new double[n * v];   // flat rows: every token equally likely
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(x), idx = bufs.i32(n, -9);
            TrainKernels.sampleRows(be, n, v, 1f, 7, 3, dx, idx, null);
            int[] a = bufs.geti(idx, n);
            TrainKernels.sampleRows(be, n, v, 1f, 7, 3, dx, idx, null);
            int[] again = bufs.geti(idx, n);
            TrainKernels.sampleRows(be, n, v, 1f, 7, 4, dx, idx, null);
            int[] nextStep = bufs.geti(idx, n);
            TrainKernels.sampleRows(be, n, v, 1f, 8, 3, dx, idx, null);
            int[] otherSeed = bufs.geti(idx, n);
            TrainKernels.sampleRows(be, n, v, 1f, 7L | (1L << 40), 3, dx, idx, null);
            int[] highSeedBits = bufs.geti(idx, n);
            assertArrayEqualsInts(a, again);
            assertNotEquals(Arrays.toString(a), Arrays.toString(nextStep), "another step draws afresh");
            assertNotEquals(Arrays.toString(a), Arrays.toString(otherSeed), "another seed draws afresh");
            assertNotEquals(Arrays.toString(a), Arrays.toString(highSeedBits), "the seed's high word counts");
            // Uniform over 500 tokens: a flat row picks floor(u * 500) up to float rounding.
            for (int r = 0; r < n; r++) {
                double u = TrainKernels.sampleUniform(7, 3, r);
                assertTrue(Math.abs(a[r] - u * v) <= 1.0, backend + " row " + r + ": " + a[r] + " for u = " + u);
            }
        }
    }

    private static void assertArrayEqualsInts(int[] want, int[] got) {
        TrainTestSupport.assertInts("same seed and step", want, got);
    }

    /**
     * 30,000 rows of the same logits: the counts of each token against {@code 30000 · softmax(x/T)}, chi-square with
     * 5 degrees of freedom below 30 (p ≈ 1.5e-5 for a correct sampler; the seed is fixed, so the test is a fixed
     * computation that cannot flake).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void frequenciesFollowTheTemperedSoftmax(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        double[] row = {1.0, 0.5, -0.25, 2.0, 0.0, -1.5};
        int v = row.length, n = 30_000;
        double[] x = new double[n * v];
        for (int r = 0; r < n; r++) System.arraycopy(row, 0, x, r * v, v);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(x), idx = bufs.i32(n, -9);
            for (double t : new double[] {0.5, 1, 2}) {
                TrainKernels.sampleRows(be, n, v, (float) t, 2026, 5, dx, idx, null);
                int[] got = bufs.geti(idx, n);
                double[] p = new double[v];
                double s = 0;
                for (int j = 0; j < v; j++) s += p[j] = Math.exp(row[j] / t);
                long[] count = new long[v];
                for (int g : got) count[g]++;
                double chi2 = 0;
                for (int j = 0; j < v; j++) {
                    double e = n * p[j] / s;
                    chi2 += (count[j] - e) * (count[j] - e) / e;
                }
                assertTrue(chi2 < 30, backend + " T=" + t + ": chi-square " + chi2 + " over counts " + Arrays.toString(count));
            }
            // Top-3: tokens 3, 0, 1 (logits 2, 1, 0.5) renormalised; the other three are never drawn.
            DeviceBuffer vals = bufs.f32(n * 3, 0), kidx = bufs.i32(n * 3, 0);
            TrainKernels.topkRows(be, n, v, 3, dx, vals, kidx);
            TrainKernels.sampleRows(be, n, v, 1f, 2026, 6, dx, vals, 2, 3, idx, null);
            int[] got = bufs.geti(idx, n);
            long[] count = new long[v];
            for (int g : got) count[g]++;
            assertEquals(0, count[2] + count[4] + count[5], backend + " top-3: counts " + Arrays.toString(count));
            double s = Math.exp(2) + Math.exp(1) + Math.exp(0.5), chi2 = 0;
            for (int j : new int[] {0, 1, 3}) {
                double e = n * Math.exp(row[j]) / s;
                chi2 += (count[j] - e) * (count[j] - e) / e;
            }
            assertTrue(chi2 < 25, backend + " top-3: chi-square " + chi2 + " over counts " + Arrays.toString(count));
        }
    }

    /** The reference's uniforms themselves: in [0, 1), on the 2^-24 grid, and spread evenly over 16 bins. */
    @Test
    void theUniformIsOnTheFloatGridAndEven() {
        long[] bins = new long[16];
        int n = 0;
        for (int step = 0; step < 40; step++) {
            for (int r = 0; r < 1000; r++, n++) {
                double u = TrainKernels.sampleUniform(99, step, r);
                assertTrue(u >= 0 && u < 1, "u = " + u);
                assertEquals(u, (double) (float) u, 0.0, "24 bits, exact in float32");
                assertEquals(0.0, u * 0x1.0p24 % 1.0, 0.0, "on the 2^-24 grid");
                bins[(int) (u * 16)]++;
            }
        }
        double e = n / 16.0, chi2 = 0;
        for (long b : bins) chi2 += (b - e) * (b - e) / e;
        assertTrue(chi2 < 45, "chi-square " + chi2 + " over " + Arrays.toString(bins));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badArgumentsNameTheArgument(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (TrainTestSupport.Bufs b = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer x = b.f32(10, 0), idx = b.i32(2, 7), small = b.f32(1, 0), floats = b.f32(2, 0);
            TrainKernelsArgumentsTest.refused("sample_rows: temperature must be a finite number > 0, got 0.0",
                    () -> TrainKernels.sampleRows(be, 2, 5, 0f, 1, 0, x, idx, null));
            TrainKernelsArgumentsTest.refused("sample_rows: temperature must be a finite number > 0, got NaN",
                    () -> TrainKernels.sampleRows(be, 2, 5, Float.NaN, 1, 0, x, idx, null));
            TrainKernelsArgumentsTest.refused("sample_rows: step must be >= 0, got -1",
                    () -> TrainKernels.sampleRows(be, 2, 5, 1f, 1, -1, x, idx, null));
            TrainKernelsArgumentsTest.refused("sample_rows: x needs 12 elements, got a buffer of 10",
                    () -> TrainKernels.sampleRows(be, 2, 6, 1f, 1, 0, x, idx, null));
            TrainKernelsArgumentsTest.refused("sample_rows: idx must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.sampleRows(be, 2, 5, 1f, 1, 0, x, floats, null));
            TrainKernelsArgumentsTest.refused("sample_rows: logp needs 2 elements, got a buffer of 1",
                    () -> TrainKernels.sampleRows(be, 2, 5, 1f, 1, 0, x, idx, small));
            TrainKernelsArgumentsTest.refused("sample_rows: cut needs 5 elements, got a buffer of 2",
                    () -> TrainKernels.sampleRows(be, 2, 5, 1f, 1, 0, x, floats, 1, 3, idx, null));
            TrainKernelsArgumentsTest.refused("sample_rows: cutStride must be >= 1 with a cut, got 0",
                    () -> TrainKernels.sampleRows(be, 2, 5, 1f, 1, 0, x, x, 0, 0, idx, null));
            TrainKernelsArgumentsTest.refused("sample_rows: N must be >= 1, got 0",
                    () -> TrainKernels.sampleRows(be, 0, 5, 1f, 1, 0, x, idx, null));
            assertThrows(IllegalStateException.class, () -> {
                DeviceBuffer closed = be.allocate(DeviceBuffer.Type.I32, 2);
                closed.close();
                TrainKernels.sampleRows(be, 2, 5, 1f, 1, 0, x, closed, null);
            });
            TrainTestSupport.assertInts("a refused launch leaves idx", new int[] {7, 7}, b.geti(idx, 2));
        }
    }
}
