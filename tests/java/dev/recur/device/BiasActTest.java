package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;

/**
 * {@code bias_act_fwd} and {@code bias_act_bwd} on every device backend, each activation, against
 * {@link ReferenceTrainKernels}; the backward (from the output) also against central differences of the float64
 * forward, the forward also in place, and the bias gradient as {@code col_sum} of dx.
 */
class BiasActTest {
    static final double TOL = 1e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void everyActivationForwardBackward(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(7);
        int N = 13, F = 29;
        double[] x = TrainTestSupport.random(r, N * F, 3), bias = TrainTestSupport.random(r, F, 1),
                dy = TrainTestSupport.random(r, N * F, 1);
        for (TrainKernels.Act act : TrainKernels.Act.values()) {
            String what = backend + " " + act;
            double[] y = ReferenceTrainKernels.biasActFwd(N, F, act.code(), x, bias);
            double[] dx = ReferenceTrainKernels.biasActBwd(N, F, act.code(), y, dy);
            // The backward from the output is the derivative of the forward (away from relu's kink).
            for (int i = 0; i < N * F; i++) {
                double eps = 1e-6;
                double[] xp = x.clone(), xm = x.clone();
                xp[i] += eps;
                xm[i] -= eps;
                double num = dy[i] * (ReferenceTrainKernels.biasActFwd(N, F, act.code(), xp, bias)[i]
                        - ReferenceTrainKernels.biasActFwd(N, F, act.code(), xm, bias)[i]) / (2 * eps);
                if (Math.abs(x[i] + bias[i % F]) > 1e-3 && Math.abs(num - dx[i]) > 1e-6) {
                    throw new AssertionError(what + " reference backward at " + i + ": " + dx[i] + " vs numeric " + num);
                }
            }
            double[] dbias = new double[F];
            for (int i = 0; i < N * F; i++) dbias[i % F] += dx[i];
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer dxb = bufs.f32(x), db = bufs.f32(bias), dyb = bufs.f32(N * F, -1), ddy = bufs.f32(dy),
                        ddx = bufs.f32(N * F, -1), dbb = bufs.f32(F, -1);
                TrainKernels.biasActFwd(be, N, F, act, dxb, db, dyb);
                assertClose(what + " y", y, bufs.get(dyb, N * F), TOL);
                TrainKernels.biasActBwd(be, N, F, act, dyb, ddy, ddx);
                assertClose(what + " dx", dx, bufs.get(ddx, N * F), TOL);
                be.launch(Kernels.COL_SUM, new long[] {F}, N, F, ddx, dbb, 0f);
                assertClose(what + " dbias", dbias, bufs.get(dbb, F), TOL);
                TrainKernels.biasActFwd(be, N, F, act, dxb, db, dxb);
                assertClose(what + " y in place", y, bufs.get(dxb, N * F), TOL);
            }
        }
    }
}
