package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;

/**
 * {@code copy_strided} on every device backend: two matrices [N,A] and [N,B] concatenated into the columns of
 * [N,A+B] and sliced back out, checked exactly against {@link ReferenceTrainKernels#copyStrided}; every element of the
 * destination outside the copied block keeps its value.
 */
class CopyStridedTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void concatenateAndSlice(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(9);
        int N = 17, A = 5, B = 11, W = A + B;
        double[] a = TrainTestSupport.random(r, N * A, 1), b = TrainTestSupport.random(r, 3 + N * B, 1);
        double[] cat = new double[2 + N * W];
        java.util.Arrays.fill(cat, 7);
        ReferenceTrainKernels.copyStrided(N, A, a, 0, A, cat, 2, W);
        ReferenceTrainKernels.copyStrided(N, B, b, 3, B, cat, 2 + A, W);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer da = bufs.f32(a), db = bufs.f32(b), dc = bufs.f32(2 + N * W, 7), back = bufs.f32(N * B, -1);
            TrainKernels.copyStrided(be, N, A, da, 0, A, dc, 2, W);
            TrainKernels.copyStrided(be, N, B, db, 3, B, dc, 2 + A, W);
            assertClose(backend + " concatenation", cat, bufs.get(dc, 2 + N * W), 0);
            TrainKernels.copyStrided(be, N, B, dc, 2 + A, W, back, 0, B);
            assertClose(backend + " slice", java.util.Arrays.copyOfRange(b, 3, 3 + N * B), bufs.get(back, N * B), 0);
        }
    }
}
