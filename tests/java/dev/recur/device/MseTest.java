package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import dev.recur.nn.layers.MeanSquaredError;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code mse_fwd_bwd} on every device backend against {@link ReferenceTrainKernels#mseFwdBwd}, which is itself
 * {@link MeanSquaredError}'s definition (checked here too): the gradient {@code 2 (pred - target) / N} and the mean
 * loss in one device scalar, for one element and for more than one chunk of the cpu backend's split.
 */
class MseTest {
    static final double TOL = 2e-6;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesTheReferenceAndMeanSquaredError(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (int n : new int[] {1, 37, 20000}) {
            SplittableRandom r = new SplittableRandom(n);
            double[] pred = TrainTestSupport.random(r, n, 3), target = TrainTestSupport.random(r, n, 3);
            double[] want = new double[n];
            double loss = ReferenceTrainKernels.mseFwdBwd(n, pred, target, want);
            MeanSquaredError.Result host = MeanSquaredError.compute(Tensor.of(pred.clone(), n), Tensor.of(target.clone(), n));
            assertEquals(host.loss(), loss, 1e-12 * Math.max(1, loss), "reference vs MeanSquaredError");
            assertClose("reference vs MeanSquaredError gradient", host.dprediction().data(), want, 1e-15);
            try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
                DeviceBuffer p = bufs.f32(pred), t = bufs.f32(target), d = bufs.f32(n, 9), out = bufs.f32(1, 9);
                TrainKernels.mseFwdBwd(be, n, p, t, d, out);
                assertClose(backend + " mse_fwd_bwd dpred, N=" + n, want, bufs.get(d, n), TOL);
                // A float32 sum of n squares in index order: about sqrt(n) ulps off the float64 sum.
                assertClose(backend + " mse_fwd_bwd loss, N=" + n, new double[] {loss}, bufs.get(out, 1), n > 1000 ? 2e-5 : TOL);
                assertClose(backend + " mse_fwd_bwd leaves pred", pred, bufs.get(p, n), 0);
            }
        }
    }
}
