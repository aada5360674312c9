package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import dev.recur.io.SafeTensors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;
import static dev.recur.device.TrainTestSupport.doubles;
import static dev.recur.device.TrainTestSupport.fixture;
import static dev.recur.device.TrainTestSupport.meta;

/**
 * {@code adam_step} on every device backend against {@link ReferenceTrainKernels#adamStep}: the PyTorch fixtures'
 * Adam and AdamW runs (5 steps, weight decay), then parameter groups as ranges of one flat buffer (a decayed range,
 * a range without weight decay at another learning rate, and a frozen range that is not launched and must stay
 * bit for bit as it was) with the gradient scaled by a device scalar.
 */
class AdamStepTest {
    static final double TOL = 1e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void fixtureRunsMatchTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (String name : new String[] {"adam_wd", "adamw_wd"}) {
            SafeTensors f = fixture(name);
            int n = (int) meta(f, "n"), steps = (int) meta(f, "steps");
            float lr = (float) meta(f, "lr"), b1 = (float) meta(f, "beta1"), b2 = (float) meta(f, "beta2"),
                    eps = (float) meta(f, "eps"), wd = (float) meta(f, "wd");
            boolean decoupled = meta(f, "decoupled") != 0;
            double[] p = doubles(f, "p0"), grads = doubles(f, "grads"), m = new double[n], v = new double[n];
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer dp = bufs.f32(p), dg = bufs.f32(n, 0), dm = bufs.f32(n, 0), dv = bufs.f32(n, 0),
                        scale = bufs.f32(1, 1);
                for (int s = 0; s < steps; s++) {
                    double[] g = Arrays.copyOfRange(grads, s * n, (s + 1) * n);
                    be.uploadDoubles(g, 0, dg, 0, n);
                    TrainKernels.adamStep(be, dp, dg, dm, dv, scale, 0, n, s + 1, lr, b1, b2, eps, wd, decoupled);
                    // The reference runs on the float32 hyperparameters the kernel received.
                    ReferenceTrainKernels.adamStep(0, n, s + 1, lr, b1, b2, eps, wd, decoupled, 1, p, g, m, v);
                    assertClose(backend + " " + name + " p after step " + (s + 1), p, bufs.get(dp, n), TOL);
                }
                assertClose(backend + " " + name + " m", m, bufs.get(dm, n), TOL);
                assertClose(backend + " " + name + " v", v, bufs.get(dv, n), TOL);
                // And PyTorch's own numbers, at float32 distance.
                double[] torch = Arrays.copyOfRange(doubles(f, "p"), (steps - 1) * n, steps * n);
                assertClose(backend + " " + name + " p vs PyTorch", torch, bufs.get(dp, n), TOL);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void parameterGroupsAsRangesWithADeviceScale(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(5);
        int n = 1000, a1 = 600, a2 = 900;  // [0,600) decayed, [600,900) no decay and lr/2, [900,1000) frozen
        double[] p = TrainTestSupport.random(r, n, 1), m = TrainTestSupport.random(r, n, 0.1), v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextDouble(0, 0.01);
        float scale = 0.375f;
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dp = bufs.f32(p), dm = bufs.f32(m), dv = bufs.f32(v), dg = bufs.f32(n, 0),
                    ds = bufs.f32(new double[] {scale});
            for (int step = 7; step <= 9; step++) {
                double[] g = TrainTestSupport.random(r, n, 2);
                be.uploadDoubles(g, 0, dg, 0, n);
                TrainKernels.adamStep(be, dp, dg, dm, dv, ds, 0, a1, step, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, true);
                TrainKernels.adamStep(be, dp, dg, dm, dv, ds, a1, a2 - a1, step, 5e-3f, 0.9f, 0.999f, 1e-8f, 0f, true);
                ReferenceTrainKernels.adamStep(0, a1, step, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, true, scale, p, g, m, v);
                ReferenceTrainKernels.adamStep(a1, a2 - a1, step, 5e-3f, 0.9f, 0.999f, 1e-8f, 0f, true, scale, p, g, m, v);
            }
            double[] gotP = bufs.get(dp, n);
            assertClose(backend + " grouped p", p, gotP, TOL);
            assertClose(backend + " grouped m", m, bufs.get(dm, n), TOL);
            assertClose(backend + " grouped v", v, bufs.get(dv, n), TOL);
            for (int i = a2; i < n; i++) {
                if (gotP[i] != p[i]) throw new AssertionError(backend + ": frozen p[" + i + "] changed: " + p[i] + " -> " + gotP[i]);
            }
        }
    }
}
