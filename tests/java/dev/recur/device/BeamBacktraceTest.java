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
 * {@code beam_backtrace} on every device backend against {@link ReferenceTrainKernels#beamBacktrace}, over histories
 * that the reference's {@code beam_candidates}, {@code topk_rows} and {@code beam_update} make from random logits
 * biased towards the end token or away from it (so that hypotheses finish at different steps or stay open, and with
 * K > V dead rows appear at step 0): alpha 0, 0.6 and 1, finished answers and open ones. Tokens and indexes exactly, scores within 1e-6.
 */
class BeamBacktraceTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** The histories after {@code S} reference steps: {score, histTok, histPar} as double[], int[], int[]. */
    static Object[] simulate(int B, int K, int V, int S, int end, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int n = B * K;
        int[] tok = new int[n], parents = new int[n], histTok = new int[S * n], histPar = new int[S * n];
        double[] score = new double[n];
        for (int step = 0; step < S; step++) {
            double[] logits = TrainTestSupport.random(r, n * V, 2);
            // Every third item almost never ends (open answers); the others often do, at different steps.
            for (int i = 0; i < n; i++) logits[i * V + end] += i / K % 3 == 0 ? -12 : r.nextDouble(-1, 2.5);
            double[] cand = ReferenceTrainKernels.beamCandidates(n, K, V, step, end, logits, tok, score);
            int[] idx = ReferenceTrainKernels.topkRows(B, K * V, K, cand);
            double[] vals = new double[n];
            for (int i = 0; i < n; i++) vals[i] = idx[i] < 0 ? Double.NaN : (float) cand[(i / K) * K * V + idx[i]];
            ReferenceTrainKernels.beamUpdate(n, K, V, step, end, vals, idx, parents, tok, score, histTok, histPar);
        }
        return new Object[] {score, histTok, histPar};
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        int B = 9, K = 6, V = 5, S = 7, end = 1, n = B * K;
        Object[] h = simulate(B, K, V, S, end, 10);
        double[] score = (double[]) h[0];
        int[] histTok = (int[]) h[1], histPar = (int[]) h[2];
        int finished = 0, open = 0;
        for (double alpha : new double[] {0, 0.6, 1}) {
            int[] wantOut = new int[B * S], wantAt = new int[B * S];
            double[] wantScores = new double[2 * B];
            ReferenceTrainKernels.beamBacktrace(B, K, S, end, alpha, score, histTok, histPar, wantOut, wantAt, wantScores);
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer out = bufs.i32(B * S, -7), at = bufs.i32(B * S, -7), scores = bufs.f32(2 * B, 0);
                TrainKernels.beamBacktrace(be, B, K, S, end, (float) alpha, bufs.f32(score), bufs.i32(histTok),
                        bufs.i32(histPar), out, at, scores);
                TrainTestSupport.assertInts(backend + " alpha " + alpha + " tokens", wantOut, bufs.geti(out, B * S));
                TrainTestSupport.assertInts(backend + " alpha " + alpha + " rows", wantAt, bufs.geti(at, B * S));
                TrainTestSupport.assertClose(backend + " alpha " + alpha + " scores", wantScores, bufs.get(scores, 2 * B), 1e-6);
            }
            for (int b = 0; b < B; b++) {
                if (wantOut[b * S + S - 1] == end) finished++;
                else open++;
            }
        }
        if (finished == 0 || open == 0) throw new AssertionError("the data should give finished and open answers: " + finished + ", " + open);
        int dead = 0;
        for (double s : score) if (s == Double.NEGATIVE_INFINITY) dead++;
        // With K = 6 > V = 5 one slot per item is dead after step 0; whether any stays dead depends on the data.
        System.out.println(backend + " beam_backtrace: " + finished + " finished, " + open + " open answers, " + dead + " dead rows at the end");
    }
}
