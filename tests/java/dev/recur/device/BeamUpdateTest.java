package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * {@code beam_update} on every device backend against {@link ReferenceTrainKernels#beamUpdate}, after
 * {@code topk_rows} over {@code [B, K*V]} candidates: live slots take parent {@code b*K + i/V} and token {@code i%V};
 * a slot with a -inf candidate or none at all (index -1, NaN) is dead ({@code b*K}, end, -inf). Ints and the copied
 * float32 scores are compared exactly, the other history rows must stay untouched.
 */
class BeamUpdateTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(6);
        int B = 4, K = 5, V = 6, end = 1, n = B * K, steps = 4, step = 2;
        double[] cand = TrainTestSupport.random(r, n * V, 10);
        for (int i = 0; i < K * V; i++) if (i >= 3) cand[i] = Double.NEGATIVE_INFINITY;  // item 0: 3 live candidates for 5 slots
        for (int i = K * V; i < 2 * K * V; i++) if (i % 2 == 0) cand[i] = Double.NaN;     // item 1: NaN passed over
        for (int i = 2 * K * V; i < 3 * K * V; i++) cand[i] = r.nextInt(3);                // item 2: many ties
        int[] idx = ReferenceTrainKernels.topkRows(B, K * V, K, cand);
        double[] vals = new double[n];
        for (int i = 0; i < n; i++) vals[i] = idx[i] < 0 ? Double.NaN : cand[(i / K) * K * V + idx[i]];
        int[] parents = new int[n], tok = new int[n], histTok = new int[steps * n], histPar = new int[steps * n];
        Arrays.fill(histTok, -5);
        Arrays.fill(histPar, -6);
        double[] score = new double[n];
        int[] wantParents = parents.clone(), wantTok = tok.clone(), wantHistTok = histTok.clone(), wantHistPar = histPar.clone();
        double[] wantScore = score.clone();
        ReferenceTrainKernels.beamUpdate(n, K, V, step, end, vals, idx, wantParents, wantTok, wantScore, wantHistTok, wantHistPar);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dParents = bufs.i32(n, 9), dTok = bufs.i32(n, 9), dScore = bufs.f32(n, 9);
            DeviceBuffer dHistTok = bufs.i32(histTok), dHistPar = bufs.i32(histPar);
            TrainKernels.beamUpdate(be, B, K, V, step, end, bufs.f32(vals), bufs.i32(idx), dParents, dTok, dScore, dHistTok, dHistPar);
            TrainTestSupport.assertInts(backend + " parents", wantParents, bufs.geti(dParents, n));
            TrainTestSupport.assertInts(backend + " tokens", wantTok, bufs.geti(dTok, n));
            TrainTestSupport.assertInts(backend + " token history", wantHistTok, bufs.geti(dHistTok, steps * n));
            TrainTestSupport.assertInts(backend + " parent history", wantHistPar, bufs.geti(dHistPar, steps * n));
            double[] got = bufs.get(dScore, n);
            for (int i = 0; i < n; i++) {
                if (Double.compare(wantScore[i], got[i]) != 0) throw new AssertionError(backend + " score " + i + ": expected " + wantScore[i] + ", got " + got[i]);
            }
        }
        int dead = 0;
        for (int i = 0; i < n; i++) if (wantScore[i] == Double.NEGATIVE_INFINITY) dead++;
        if (dead < 2) throw new AssertionError("the data should make dead slots, made " + dead);
    }
}
