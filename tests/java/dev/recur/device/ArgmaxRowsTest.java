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
 * {@code argmax_rows} on every device backend against {@link ReferenceTrainKernels#argmaxRows}: random rows, rows with
 * tied maxima (the lower index wins), a maximum in the first and in the last column, NaN before and among the numbers
 * (passed over) and an all-NaN row (0). Indexes are compared exactly.
 */
class ArgmaxRowsTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(1);
        int N = 40, V = 57;
        double[] x = new double[N * V];
        for (int i = 0; i < x.length; i++) x[i] = r.nextInt(9) - 4;   // few distinct values: many ties
        for (int j = 0; j < V; j++) {
            x[j] = 0;
            x[V + j] = -1;
        }
        x[3] = 2;
        x[30] = 2;                           // row 0: tie at 3 and 30 -> 3
        x[2 * V - 1] = 5;                    // row 1: last column
        x[2 * V] = 9;                        // row 2: first column
        x[3 * V] = Double.NaN;               // row 3: NaN first, then numbers
        x[3 * V + 7] = 50;
        x[4 * V + 5] = Double.NaN;           // row 4: NaN among numbers
        for (int j = 0; j < V; j++) x[5 * V + j] = Double.NaN;   // row 5: all NaN
        int[] want = ReferenceTrainKernels.argmaxRows(N, V, x);
        if (want[0] != 3 || want[1] != V - 1 || want[2] != 0 || want[3] != 7 || want[5] != 0) {
            throw new AssertionError("reference argmax: " + java.util.Arrays.toString(want));
        }
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(x), idx = bufs.i32(N, -9);
            TrainKernels.argmaxRows(be, N, V, dx, idx);
            TrainTestSupport.assertInts(backend + " argmax_rows", want, bufs.geti(idx, N));
        }
    }
}
