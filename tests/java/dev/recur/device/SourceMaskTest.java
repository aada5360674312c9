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

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code source_mask} on every device backend against {@link ReferenceTrainKernels#sourceLengths} and
 * {@link ReferenceTrainKernels#sourceMask}: padded sources of random lengths, one with the padding id inside it (its
 * length runs to its last other id), one of the full length, one all padding (length 0), and a padding id other
 * than 0. Lengths and mask are compared exactly.
 */
class SourceMaskTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        for (int pad : new int[] {0, 3}) {
            SplittableRandom r = new SplittableRandom(pad + 1);
            int T = 7, B = 9;
            int[] ids = new int[T * B];
            Arrays.fill(ids, pad);
            int[] want = new int[B];
            for (int b = 0; b < B; b++) {
                want[b] = b == 0 ? T : b == 1 ? 0 : r.nextInt(1, T + 1);
                for (int t = 0; t < want[b]; t++) ids[t * B + b] = pad + 1 + r.nextInt(5);
            }
            want[2] = 5;
            for (int t = 0; t < T; t++) ids[t * B + 2] = t == 1 || t >= 5 ? pad : pad + 1;   // pad at step 1, then 3 ids
            int[] lengths = ReferenceTrainKernels.sourceLengths(T, B, pad, ids);
            assertEquals(Arrays.toString(want), Arrays.toString(lengths), "reference lengths, pad " + pad);
            int[] mask = ReferenceTrainKernels.sourceMask(T, B, lengths);
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer dIds = bufs.i32(ids), dLen = bufs.i32(B, -9), dMask = bufs.i32(B * T, -9);
                TrainKernels.sourceMask(be, T, B, pad, dIds, dLen, dMask);
                TrainTestSupport.assertInts(backend + " source_mask lengths, pad " + pad, lengths, bufs.geti(dLen, B));
                TrainTestSupport.assertInts(backend + " source_mask mask, pad " + pad, mask, bufs.geti(dMask, B * T));
            }
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after the test");
    }
}
