package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * {@code topk_rows} on every device backend against {@link ReferenceTrainKernels#topkRows} (a stable sort): rows with
 * many ties (equal values in increasing index), K = 1, K = V, NaN passed over, and a row with fewer numbers than K
 * (the slots left over: index -1, value NaN). Indexes are compared exactly and values are x at those indexes.
 */
class TopkRowsTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static void check(String what, DeviceBackend be, int N, int V, int K, double[] x) {
        int[] want = ReferenceTrainKernels.topkRows(N, V, K, x);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(x), vals = bufs.f32(N * K, 0), idx = bufs.i32(N * K, -9);
            TrainKernels.topkRows(be, N, V, K, dx, vals, idx);
            int[] got = bufs.geti(idx, N * K);
            double[] gv = bufs.get(vals, N * K);
            TrainTestSupport.assertInts(what + " indexes", want, got);
            for (int i = 0; i < N * K; i++) {
                double w = want[i] < 0 ? Double.NaN : x[(i / K) * V + want[i]];
                if (!(Double.compare(w, gv[i]) == 0)) {
                    throw new AssertionError(what + " value " + i + ": expected " + w + ", got " + gv[i]);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(2);
        int N = 23, V = 41;
        double[] ties = new double[N * V];
        for (int i = 0; i < ties.length; i++) ties[i] = r.nextInt(6) * 0.5;
        ties[5] = Double.NaN;
        ties[V + 40] = Double.NaN;
        for (int K : new int[] {1, 4, 10, V}) check(backend + " ties K=" + K, be, N, V, K, ties);
        double[] wide = TrainTestSupport.random(r, N * V, 3);
        check(backend + " distinct K=5", be, N, V, 5, wide);
        double[] sparse = new double[2 * 6];
        java.util.Arrays.fill(sparse, Double.NaN);
        sparse[2] = 1;
        sparse[4] = 3;                       // row 0: two numbers for K = 3
        for (int j = 6; j < 12; j++) sparse[j] = -j;
        check(backend + " fewer numbers than K", be, 2, 6, 3, sparse);
    }
}
