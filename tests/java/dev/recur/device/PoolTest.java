package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.TrainKernels.Pool;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code pool_mean_fwd/_bwd} and {@code pool_max_fwd/_bwd} on every device backend against
 * {@link ReferenceTrainKernels}: time-major outputs at an offset into their buffer, sequences of every length from 0
 * (pooled to 0, no gradient) through T and a length past T (clipped), ties in a column (the first step keeps the
 * max), and gradients that overwrite what {@code dy} held before (padded steps included).
 */
class PoolTest {
    static final int T = 6, B = 5, W = 7, YOFF = 3, DYOFF = 2;
    static final int[] LENGTHS = {6, 1, 0, 4, 9};
    /** float32 sums of at most six values against float64. */
    static final double TOL = 1e-6;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** y [T,B,W], float32-exact, with ties in column 0 of sequence 0 (steps 1 and 4) and of sequence 3 (0 and 2). */
    static double[] outputs() {
        double[] y = TrainTestSupport.random(new SplittableRandom(3), T * B * W, 2);
        y[(1 * B) * W] = 5;
        y[(4 * B) * W] = 5;
        y[(0 * B + 3) * W] = 4;
        y[(2 * B + 3) * W] = 4;
        return y;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        double[] y = outputs();
        double[] dout = TrainTestSupport.random(new SplittableRandom(4), B * W, 1);
        int[] wantIdx = new int[B * W];
        double[] wantMax = ReferenceTrainKernels.poolMaxFwd(T, B, W, y, LENGTHS, wantIdx);
        assertEquals(1, wantIdx[0], "reference: a tie keeps the first step");
        assertEquals(0, wantIdx[3 * W], "reference: a tie keeps the first step");
        assertEquals(-1, wantIdx[2 * W], "reference: an empty sequence has no max");
        double[] wantMean = ReferenceTrainKernels.poolMeanFwd(T, B, W, y, LENGTHS);
        double[] wantMeanGrad = ReferenceTrainKernels.poolMeanBwd(T, B, W, LENGTHS, dout);
        double[] wantMaxGrad = ReferenceTrainKernels.poolMaxBwd(T, B, W, wantIdx, dout);
        double[] padded = new double[YOFF + y.length];
        System.arraycopy(y, 0, padded, YOFF, y.length);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dy = bufs.f32(padded), len = bufs.i32(LENGTHS), dd = bufs.f32(dout);
            DeviceBuffer out = bufs.f32(B * W, 7), idx = bufs.i32(B * W, -9), grad = bufs.f32(DYOFF + T * B * W, 7);

            TrainKernels.poolFwd(be, Pool.MEAN, T, B, W, dy, YOFF, len, out, null);
            assertClose(backend + " pool_mean_fwd", wantMean, bufs.get(out, B * W), TOL);
            TrainKernels.poolBwd(be, Pool.MEAN, T, B, W, len, null, dd, grad, DYOFF);
            assertClose(backend + " pool_mean_bwd", wantMeanGrad, tail(bufs.get(grad, DYOFF + T * B * W)), TOL);
            assertEquals(7.0, bufs.get(grad, DYOFF)[DYOFF - 1], backend + ": pool_mean_bwd wrote before dyoff");

            TrainKernels.poolFwd(be, Pool.MAX, T, B, W, dy, YOFF, len, out, idx);
            assertClose(backend + " pool_max_fwd", wantMax, bufs.get(out, B * W), 0);
            TrainTestSupport.assertInts(backend + " pool_max_fwd idx", wantIdx, bufs.geti(idx, B * W));
            TrainKernels.poolBwd(be, Pool.MAX, T, B, W, null, idx, dd, grad, DYOFF);
            assertClose(backend + " pool_max_bwd", wantMaxGrad, tail(bufs.get(grad, DYOFF + T * B * W)), 0);
        }
    }

    /** The whole grid on the cpu backend runs as rows of sequences; one sequence of one step is the smallest launch. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void oneStepOneSequence(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer y = bufs.f32(new double[] {-2.5, 0.75}), len = bufs.i32(new int[] {1});
            DeviceBuffer out = bufs.f32(2, 0), idx = bufs.i32(2, 5);
            TrainKernels.poolFwd(be, Pool.MAX, 1, 1, 2, y, 0, len, out, idx);
            assertEquals(Arrays.toString(new double[] {-2.5, 0.75}), Arrays.toString(bufs.get(out, 2)), backend);
            TrainTestSupport.assertInts(backend + " idx", new int[] {0, 0}, bufs.geti(idx, 2));
            TrainKernels.poolFwd(be, Pool.MEAN, 1, 1, 2, y, 0, len, out, null);
            assertEquals(Arrays.toString(new double[] {-2.5, 0.75}), Arrays.toString(bufs.get(out, 2)), backend);
        }
    }

    private static double[] tail(double[] a) {
        return Arrays.copyOfRange(a, DYOFF, a.length);
    }
}
