package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code scheduled_feed} on every device backend against {@link ReferenceTrainKernels#scheduledFeed} (the float64
 * comparison {@code sampleUniform < tf} the host's scheduled sampling makes): probabilities 0, 1, 0.5, 0.3 and a
 * probability equal to one row's uniform (that row is not teacher-forced, one ulp above it is: the integer threshold
 * is exact), written at an offset into a larger buffer from a target read at an offset. Tokens are compared exactly.
 */
class ScheduledFeedTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        int n = 301, step = 5, tgtOff = 2 * n, outOff = n;
        long seed = 0x1234_5678_9ABCL ^ -1L;
        int[] targets = new int[3 * n], pred = new int[n];
        for (int i = 0; i < targets.length; i++) targets[i] = 1000 + i;
        for (int r = 0; r < n; r++) pred[r] = -1 - r;
        int[] target = Arrays.copyOfRange(targets, tgtOff, tgtOff + n);
        double edge = TrainKernels.sampleUniform(seed, step, 17);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dt = bufs.i32(targets), dp = bufs.i32(pred), next = bufs.i32(2 * n, -7);
            for (double tf : new double[] {0, 1, 0.5, 0.3, edge, Math.nextUp(edge)}) {
                int[] want = ReferenceTrainKernels.scheduledFeed(n, tf, seed, step, target, pred);
                TrainKernels.scheduledFeed(be, n, tf, seed, step, dt, tgtOff, dp, next, outOff);
                int[] got = bufs.geti(next, 2 * n);
                for (int r = 0; r < n; r++) assertEquals(-7, got[r], backend + ": row " + r + " before the offset written");
                TrainTestSupport.assertInts(backend + " scheduled_feed tf=" + tf, want, Arrays.copyOfRange(got, n, 2 * n));
                long forced = Arrays.stream(want).filter(x -> x >= 0).count();
                if (tf == 0) assertEquals(0, forced);
                if (tf == 1) assertEquals(n, forced);
                if (tf == 0.5 && (forced < n / 3 || forced > 2 * n / 3)) throw new AssertionError("tf 0.5 forced " + forced + " of " + n);
                if (tf == edge) assertEquals(pred[17], want[17], "a uniform equal to tf is not below it");
                if (tf == Math.nextUp(edge)) assertEquals(target[17], want[17], "one ulp above the uniform forces");
            }
        }
    }
}
