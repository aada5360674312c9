package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import dev.recur.io.SafeTensors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;
import static dev.recur.device.TrainTestSupport.doubles;
import static dev.recur.device.TrainTestSupport.fixture;
import static dev.recur.device.TrainTestSupport.meta;

/**
 * Global-norm clipping on the device, {@code grad_norm_partial} + {@code grad_clip_scale}, on every device backend:
 * PyTorch's {@code clip_grad_norm_} fixtures (clipping and not), a buffer large enough for several partial sums
 * whose scale an {@code sgd_step} then applies without any read-back, two ranges summed into one parts buffer, and
 * bit-identical results from run to run (fixed summation order, no atomics).
 */
class GradClipTest {
    static final double TOL = 1e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void torchFixtures(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (String name : new String[] {"clip_active", "clip_inactive"}) {
            SafeTensors f = fixture(name);
            double[] g = doubles(f, "grad");
            int n = g.length;
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer dg = bufs.f32(g), parts = bufs.f32(TrainKernels.normParts(n), 0), norm = bufs.f32(1, 0),
                        scale = bufs.f32(1, 0);
                TrainKernels.gradNorm(be, dg, n, parts, (float) meta(f, "max_norm"), norm, scale);
                assertClose(backend + " " + name + " norm", doubles(f, "total_norm"), bufs.get(norm, 1), TOL);
                double s = bufs.get(scale, 1)[0];
                double[] clipped = g.clone();
                for (int i = 0; i < n; i++) clipped[i] *= s;
                assertClose(backend + " " + name + " clipped", doubles(f, "clipped"), clipped, TOL);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void manyPartsFeedTheOptimizerWithoutReadBack(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(3);
        int n = 3 * 4096 + 77;   // four partial sums, the last one short
        double[] g = TrainTestSupport.random(r, n, 1), p = TrainTestSupport.random(r, n, 1);
        float maxNorm = 2f;
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            int P = TrainKernels.normParts(n);
            if (P != 4) throw new AssertionError("normParts(" + n + ") = " + P + ", expected 4");
            DeviceBuffer dg = bufs.f32(g), dp = bufs.f32(p), parts = bufs.f32(P, 0), norm = bufs.f32(1, 0),
                    scale = bufs.f32(1, 0), unused = bufs.f32(1, 0);
            TrainKernels.gradNorm(be, dg, n, parts, maxNorm, norm, scale);
            TrainKernels.sgdStep(be, dp, dg, unused, scale, 0, n, true, 0.5f, 0f, 0f, 0f, false);
            double refNorm = ReferenceTrainKernels.gradNorm(g, 0, n);
            double refScale = ReferenceTrainKernels.gradClipScale(refNorm, maxNorm);
            assertClose(backend + " norm", new double[] {refNorm}, bufs.get(norm, 1), TOL);
            assertClose(backend + " scale", new double[] {refScale}, bufs.get(scale, 1), TOL);
            ReferenceTrainKernels.sgdStep(0, n, true, 0.5f, 0, 0, 0, false, refScale, p, g, new double[n]);
            assertClose(backend + " p after the clipped step", p, bufs.get(dp, n), TOL);

            // The same launches again give the same bits.
            float[] first = new float[P + 1], again = new float[P + 1];
            be.download(parts, 0, first, 0, P);
            be.download(norm, 0, first, P, 1);
            TrainKernels.gradNorm(be, dg, n, parts, maxNorm, norm, scale);
            be.download(parts, 0, again, 0, P);
            be.download(norm, 0, again, P, 1);
            if (!java.util.Arrays.equals(first, again)) throw new AssertionError(backend + ": a second run differs");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void twoRangesIntoOneNorm(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(4);
        double[] a = TrainTestSupport.random(r, 5000, 1), b = TrainTestSupport.random(r, 900, 3);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer da = bufs.f32(a), db = bufs.f32(b), parts = bufs.f32(8, Double.NaN), norm = bufs.f32(1, 0),
                    scale = bufs.f32(1, 0);
            int pa = TrainKernels.gradNormPartial(be, da, 100, 4900, parts, 0);
            int pb = TrainKernels.gradNormPartial(be, db, 0, 900, parts, pa);
            TrainKernels.gradClipScale(be, parts, pa + pb, Float.POSITIVE_INFINITY, norm, scale);
            double ss = 0;
            for (int i = 100; i < 5000; i++) ss += a[i] * a[i];
            for (double x : b) ss += x * x;
            assertClose(backend + " norm of two ranges", new double[] {Math.sqrt(ss)}, bufs.get(norm, 1), TOL);
            assertClose(backend + " scale with maxNorm = inf", new double[] {1}, bufs.get(scale, 1), 0);
        }
    }
}
