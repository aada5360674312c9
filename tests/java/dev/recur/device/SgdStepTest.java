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
 * {@code sgd_step} on every device backend against {@link ReferenceTrainKernels#sgdStep}: the PyTorch fixtures (momentum
 * with dampening, Nesterov, plain SGD, each with weight decay; the momentum buffer starts as garbage, since the first
 * step must overwrite it), then a range launch with a device gradient scale that leaves the rest of the buffer alone.
 */
class SgdStepTest {
    static final double TOL = 1e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void fixtureRunsMatchTheReference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (String name : new String[] {"sgd_momentum", "sgd_nesterov", "sgd_plain"}) {
            SafeTensors f = fixture(name);
            int n = (int) meta(f, "n"), steps = (int) meta(f, "steps");
            float lr = (float) meta(f, "lr"), mom = (float) meta(f, "momentum"), damp = (float) meta(f, "dampening"),
                    wd = (float) meta(f, "wd");
            boolean nesterov = meta(f, "nesterov") != 0;
            double[] p = doubles(f, "p0"), grads = doubles(f, "grads"), buf = new double[n];
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer dp = bufs.f32(p), dg = bufs.f32(n, 0), db = bufs.f32(n, 123.0), scale = bufs.f32(1, 1);
                for (int s = 0; s < steps; s++) {
                    double[] g = Arrays.copyOfRange(grads, s * n, (s + 1) * n);
                    be.uploadDoubles(g, 0, dg, 0, n);
                    TrainKernels.sgdStep(be, dp, dg, db, scale, 0, n, s == 0, lr, mom, damp, wd, nesterov);
                    ReferenceTrainKernels.sgdStep(0, n, s == 0, lr, mom, damp, wd, nesterov, 1, p, g, buf);
                    assertClose(backend + " " + name + " p after step " + (s + 1), p, bufs.get(dp, n), TOL);
                }
                if (mom != 0) assertClose(backend + " " + name + " momentum buffer", buf, bufs.get(db, n), TOL);
                double[] torch = Arrays.copyOfRange(doubles(f, "p"), (steps - 1) * n, steps * n);
                assertClose(backend + " " + name + " p vs PyTorch", torch, bufs.get(dp, n), TOL);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void rangeWithDeviceScale(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(8);
        int n = 300, off = 70, cnt = 190;
        double[] p = TrainTestSupport.random(r, n, 1), buf = TrainTestSupport.random(r, n, 0.5),
                g = TrainTestSupport.random(r, n, 3);
        double[] p0 = p.clone();
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dp = bufs.f32(p), db = bufs.f32(buf), dg = bufs.f32(g), ds = bufs.f32(new double[] {0.25});
            TrainKernels.sgdStep(be, dp, dg, db, ds, off, cnt, false, 0.1f, 0.9f, 0f, 0.01f, true);
            ReferenceTrainKernels.sgdStep(off, cnt, false, 0.1f, 0.9f, 0f, 0.01f, true, 0.25, p, g, buf);
            double[] got = bufs.get(dp, n);
            assertClose(backend + " p", p, got, TOL);
            assertClose(backend + " buf", buf, bufs.get(db, n), TOL);
            for (int i = 0; i < n; i++) {
                if ((i < off || i >= off + cnt) && got[i] != p0[i]) {
                    throw new AssertionError(backend + ": p[" + i + "] outside the range changed");
                }
            }
        }
    }
}
