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
import static dev.recur.device.TrainTestSupport.ints;
import static dev.recur.device.TrainTestSupport.meta;

/**
 * {@code softmax_xent_fwd_bwd} and {@code softmax_xent_mean} on every device backend against
 * {@link ReferenceTrainKernels#softmaxXentFwdBwd}: PyTorch's {@code cross_entropy(ignore_index=pad)} fixture, a larger
 * case with large logits (the max subtraction matters) computed in place (dlogits = logits), a batch that is all
 * padding (mean 0, gradient 0), and a target outside the vocabulary, which must show as NaN rather than vanish.
 */
class SoftmaxXentTest {
    static final double TOL = 2e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** Runs both kernels, compares with the reference, and returns the device's mean loss. */
    static double check(String what, DeviceBackend be, int N, int V, int pad, double[] logits, int[] targets,
                        boolean inPlace) {
        double[] loss = new double[N], dl = new double[N * V];
        ReferenceTrainKernels.softmaxXentFwdBwd(N, V, pad, logits, targets, loss, dl);
        double mean = ReferenceTrainKernels.softmaxXentMean(N, pad, targets, loss);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(logits), dt = bufs.i32(targets), dloss = bufs.f32(N, -1),
                    dd = inPlace ? dx : bufs.f32(N * V, -1), out = bufs.f32(1, -1);
            TrainKernels.softmaxXentFwdBwd(be, N, V, pad, dx, dt, dloss, dd);
            TrainKernels.softmaxXentMean(be, N, pad, dt, dloss, out);
            assertClose(what + " loss rows", loss, bufs.get(dloss, N), TOL);
            assertClose(what + " dlogits", dl, bufs.get(dd, N * V), TOL);
            double got = bufs.get(out, 1)[0];
            assertClose(what + " mean loss", new double[] {mean}, new double[] {got}, TOL);
            return got;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void torchFixture(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SafeTensors f = fixture("xent_ignore");
        int N = (int) meta(f, "N"), V = (int) meta(f, "V"), pad = (int) meta(f, "pad");
        double[] logits = doubles(f, "logits");
        double mean = check(backend + " xent_ignore", be, N, V, pad, logits, ints(f, "targets"), false);
        assertClose(backend + " mean loss vs PyTorch", doubles(f, "loss"), new double[] {mean}, TOL);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(logits), dt = bufs.i32(ints(f, "targets")), dl = bufs.f32(N, 0),
                    dd = bufs.f32(N * V, 0);
            TrainKernels.softmaxXentFwdBwd(be, N, V, pad, dx, dt, dl, dd);
            assertClose(backend + " dlogits vs PyTorch", doubles(f, "dlogits"), bufs.get(dd, N * V), TOL);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void largeLogitsInPlaceWithPadding(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(2);
        int N = 37, V = 211, pad = 5;
        double[] logits = TrainTestSupport.random(r, N * V, 30);
        int[] targets = new int[N];
        for (int i = 0; i < N; i++) targets[i] = i % 4 == 1 ? pad : r.nextInt(V);
        targets[0] = 0;
        targets[2] = V - 1;
        check(backend + " separate output", be, N, V, pad, logits, targets, false);
        check(backend + " in place", be, N, V, pad, logits, targets, true);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void allPaddingAndBadTargets(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(6);
        int N = 4, V = 9;
        double[] logits = TrainTestSupport.random(r, N * V, 2);
        double mean = check(backend + " all padding", be, N, V, -1, logits, new int[] {-1, -1, -1, -1}, false);
        if (mean != 0) throw new AssertionError(backend + ": mean over an all-padding batch " + mean + ", expected 0");
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dx = bufs.f32(logits), dt = bufs.i32(new int[] {1, V, 2, 0}), dl = bufs.f32(N, 0),
                    dd = bufs.f32(N * V, 0), out = bufs.f32(1, 0);
            TrainKernels.softmaxXentFwdBwd(be, N, V, 0, dx, dt, dl, dd);
            TrainKernels.softmaxXentMean(be, N, 0, dt, dl, out);
            double[] loss = bufs.get(dl, N);
            if (!Double.isNaN(loss[1]) || Double.isNaN(loss[0]) || !Double.isNaN(bufs.get(out, 1)[0])) {
                throw new AssertionError(backend + ": a target id V must give a NaN row loss and mean, got "
                        + java.util.Arrays.toString(loss) + " mean " + bufs.get(out, 1)[0]);
            }
        }
    }
}
