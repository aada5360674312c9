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
 * {@code beam_candidates} on every device backend against {@link ReferenceTrainKernels#beamCandidates}: at step 0 only
 * each item's first row offers (the others -inf, whatever the score buffer holds); later, open rows offer their score
 * plus the log-softmax, finished rows (token = end) only the end token at their score, dead rows (-inf) nothing.
 * The -inf entries must match exactly, the rest within float32 rounding of a log-softmax.
 */
class BeamCandidatesTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static void check(String what, DeviceBackend be, int B, int K, int V, int step, int end, double[] logits, int[] tok,
                      double[] score) {
        int n = B * K;
        double[] want = ReferenceTrainKernels.beamCandidates(n, K, V, step, end, logits, tok, score);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer cand = bufs.f32(n * V, 7);
            TrainKernels.beamCandidates(be, B, K, V, step, end, bufs.f32(logits), bufs.i32(tok), bufs.f32(score), cand);
            double[] got = bufs.get(cand, n * V);
            assertCandidates(what, want, got);
        }
    }

    /** -inf where the reference has -inf, elsewhere within 2e-6 relative to the row's scale. */
    static void assertCandidates(String what, double[] want, double[] got) {
        for (int i = 0; i < want.length; i++) {
            if (want[i] == Double.NEGATIVE_INFINITY || got[i] == Double.NEGATIVE_INFINITY) {
                if (want[i] != got[i]) throw new AssertionError(what + " at " + i + ": expected " + want[i] + ", got " + got[i]);
                continue;
            }
            double tol = 2e-6 * Math.max(1, Math.abs(want[i]));
            if (!(Math.abs(want[i] - got[i]) <= tol)) {
                throw new AssertionError(what + " at " + i + ": expected " + want[i] + ", got " + got[i] + " (tol " + tol + ")");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(4);
        int B = 5, K = 3, V = 37, end = 2, n = B * K;
        double[] logits = TrainTestSupport.random(r, n * V, 6);
        double[] score = new double[n];
        int[] tok = new int[n];
        for (int i = 0; i < n; i++) {
            score[i] = (float) -r.nextDouble(0, 20);
            tok[i] = r.nextInt(4);          // about a quarter of the rows finished (token 2)
        }
        score[4] = Double.NEGATIVE_INFINITY; // a dead row
        tok[4] = end;
        score[7] = Double.NEGATIVE_INFINITY;
        tok[7] = 5;
        // Step 0: the score buffer is not read (garbage there must not matter), and the start token may equal end.
        double[] garbage = new double[n];
        java.util.Arrays.fill(garbage, 123.0);
        int[] starts = new int[n];
        java.util.Arrays.fill(starts, end);
        check(backend + " step 0", be, B, K, V, 0, end, logits, starts, garbage);
        check(backend + " step 3", be, B, K, V, 3, end, logits, tok, score);
        // Large logits: the log-softmax must subtract the row maximum first.
        double[] big = TrainTestSupport.random(r, n * V, 80);
        check(backend + " large logits", be, B, K, V, 1, end, big, tok, score);
        check(backend + " V = 1", be, 2, 2, 1, 1, 0, new double[] {0.5, -3, 7, 1}, new int[] {0, 1, 0, 1},
                new double[] {-1, -2, -3, -4});
    }
}
