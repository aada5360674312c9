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
 * {@code repeat_rows_i32} on every device backend against {@link ReferenceTrainKernels#repeatRowsI32}, with ints whose
 * bits as floats are denormals and NaNs (which a float copy could flush or quieten), R = 1 and a wider R.
 */
class RepeatRowsI32Test {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(8);
        int M = 7, C = 13;
        int[] src = new int[M * C];
        for (int i = 0; i < src.length; i++) src[i] = r.nextInt();
        src[0] = 1;                  // a denormal as a float
        src[1] = 0x7fa00001;         // a signalling NaN as a float
        for (int R : new int[] {1, 4}) {
            int[] want = ReferenceTrainKernels.repeatRowsI32(M, C, R, src);
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer dst = bufs.i32(M * R * C + 3, -1);
                TrainKernels.repeatRowsI32(be, M, C, R, bufs.i32(src), dst);
                int[] got = bufs.geti(dst, M * R * C + 3);
                TrainTestSupport.assertInts(backend + " R=" + R, want, got);
                for (int i = M * R * C; i < got.length; i++) if (got[i] != -1) throw new AssertionError(backend + ": wrote past the end at " + i);
            }
        }
    }
}
