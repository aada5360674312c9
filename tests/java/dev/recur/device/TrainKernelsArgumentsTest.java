package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launchers of {@link TrainKernels} refuse bad arguments before anything is issued, on every device backend, with
 * a message naming the kernel and the argument: a buffer of the wrong type, a range past a buffer's end, out-of-range
 * hyperparameters; and a refused launch leaves the buffers as they were.
 */
class TrainKernelsArgumentsTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static void refused(String message, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badArgumentsNameTheArgument(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (TrainTestSupport.Bufs b = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer p = b.f32(10, 1), g = b.f32(10, 1), m = b.f32(10, 0), v = b.f32(10, 0), s = b.f32(1, 1),
                    small = b.f32(4, 0), ints = b.i32(10, 0), big = b.f32(12, 0);
            refused("adam_step: p needs 12 elements, got a buffer of 10",
                    () -> TrainKernels.adamStep(be, p, g, m, v, s, 2, 10, 1, 0.1f, 0.9f, 0.99f, 1e-8f, 0f, true));
            refused("adam_step: g must be an F32 buffer, got I32 buffer",
                    () -> TrainKernels.adamStep(be, p, ints, m, v, s, 0, 10, 1, 0.1f, 0.9f, 0.99f, 1e-8f, 0f, true));
            refused("adam_step: step must be >= 1",
                    () -> TrainKernels.adamStep(be, p, g, m, v, s, 0, 10, 0, 0.1f, 0.9f, 0.99f, 1e-8f, 0f, true));
            refused("adam_step: beta2 must be in [0, 1), got 1.0",
                    () -> TrainKernels.adamStep(be, p, g, m, v, s, 0, 10, 1, 0.1f, 0.9f, 1f, 1e-8f, 0f, true));
            refused("adam_step: lr must be a finite number >= 0, got NaN",
                    () -> TrainKernels.adamStep(be, p, g, m, v, s, 0, 10, 1, Float.NaN, 0.9f, 0.99f, 1e-8f, 0f, true));
            refused("sgd_step: buf needs 10 elements, got a buffer of 4",
                    () -> TrainKernels.sgdStep(be, p, g, small, s, 0, 10, true, 0.1f, 0.9f, 0f, 0f, false));
            refused("sgd_step: nesterov needs momentum > 0 and dampening 0",
                    () -> TrainKernels.sgdStep(be, p, g, m, s, 0, 10, true, 0.1f, 0.9f, 0.5f, 0f, true));
            refused("grad_clip_scale: maxNorm must be > 0",
                    () -> TrainKernels.gradClipScale(be, small, 4, 0f, s, s));
            refused("grad_norm_partial: parts needs 6 elements, got a buffer of 4",
                    () -> TrainKernels.gradNormPartial(be, g, 0, 10, small, 5));
            refused("softmax_xent_fwd_bwd: targets must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.softmaxXentFwdBwd(be, 2, 5, 0, p, g, small, p));
            refused("softmax_xent_fwd_bwd: dlogits needs 12 elements",
                    () -> TrainKernels.softmaxXentFwdBwd(be, 2, 6, 0, big, ints, small, p));
            refused("embedding_bwd: start needs 11 elements, got a buffer of 10",
                    () -> TrainKernels.embeddingBwd(be, 2, 1, 10, 0, ints, p, ints, ints, p, 0f));
            refused("embedding_fwd: ids must be an I32 buffer",
                    () -> TrainKernels.embeddingFwd(be, 2, 2, 2, p, g, m));
            refused("topk_rows: K must be in [1, V=5], got 6",
                    () -> TrainKernels.topkRows(be, 2, 5, 6, p, g, ints));
            refused("argmax_rows: idx must be an I32 buffer",
                    () -> TrainKernels.argmaxRows(be, 2, 5, p, g));
            refused("scheduled_feed: teacherForcing must be a probability in [0, 1], got 1.5",
                    () -> TrainKernels.scheduledFeed(be, 2, 1.5, 7, 1, ints, 0, ints, ints, 0));
            refused("scheduled_feed: pred must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.scheduledFeed(be, 2, 0.5, 7, 1, ints, 0, p, ints, 0));
            refused("scheduled_feed: target needs 11 elements, got a buffer of 10",
                    () -> TrainKernels.scheduledFeed(be, 2, 0.5, 7, 1, ints, 9, ints, ints, 0));
            refused("scheduled_feed: next needs 12 elements, got a buffer of 10",
                    () -> TrainKernels.scheduledFeed(be, 2, 0.5, 7, 1, ints, 0, ints, ints, 10));
            refused("scheduled_feed: step must be >= 0, got -1",
                    () -> TrainKernels.scheduledFeed(be, 2, 0.5, 7, -1, ints, 0, ints, ints, 0));
            refused("source_mask: mask must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.sourceMask(be, 2, 3, 0, ints, ints, p));
            refused("source_mask: T must be >= 1, got 0",
                    () -> TrainKernels.sourceMask(be, 0, 3, 0, ints, ints, ints));
            refused("bias_act_fwd: bias needs 6 elements, got a buffer of 4",
                    () -> TrainKernels.biasActFwd(be, 1, 6, TrainKernels.Act.TANH, p, small, p));
            refused("copy_strided: sld must be >= cols=3, got 2",
                    () -> TrainKernels.copyStrided(be, 2, 3, p, 0, 2, g, 0, 3));
            refused("copy_strided: dst overlaps src",
                    () -> TrainKernels.copyStrided(be, 2, 3, p, 0, 3, p, 2, 3));
            refused("copy_strided: dst needs 11 elements, got a buffer of 10",
                    () -> TrainKernels.copyStrided(be, 2, 3, p, 0, 3, g, 5, 3));
            refused("mse_fwd_bwd: dpred must be another buffer than pred",
                    () -> TrainKernels.mseFwdBwd(be, 10, p, g, p, s));
            refused("mse_fwd_bwd: target needs 10 elements, got a buffer of 4",
                    () -> TrainKernels.mseFwdBwd(be, 10, p, small, g, s));
            refused("mse_fwd_bwd: N must be >= 1, got 0",
                    () -> TrainKernels.mseFwdBwd(be, 0, p, g, m, s));
            // y [T=2, B=2, W=3] is 12 elements: a buffer of 10 from offset 0 is short, as is 12 from offset 1.
            refused("pool_mean_fwd: y needs 12 elements, got a buffer of 10",
                    () -> TrainKernels.poolFwd(be, TrainKernels.Pool.MEAN, 2, 2, 3, p, 0, ints, g, null));
            refused("pool_max_fwd: y needs 13 elements, got a buffer of 12",
                    () -> TrainKernels.poolFwd(be, TrainKernels.Pool.MAX, 2, 2, 3, big, 1, ints, g, ints));
            refused("pool_max_fwd: idx must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.poolFwd(be, TrainKernels.Pool.MAX, 2, 2, 2, p, 0, ints, g, m));
            refused("pool_mean_fwd: lengths must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.poolFwd(be, TrainKernels.Pool.MEAN, 2, 2, 2, p, 0, g, g, null));
            refused("pool_mean_fwd: idx must be null",
                    () -> TrainKernels.poolFwd(be, TrainKernels.Pool.MEAN, 2, 2, 2, p, 0, ints, g, ints));
            refused("pool_*_fwd: kind must be MEAN or MAX, got null",
                    () -> TrainKernels.poolFwd(be, null, 2, 2, 2, p, 0, ints, g, ints));
            refused("pool_max_fwd: W must be >= 1, got 0",
                    () -> TrainKernels.poolFwd(be, TrainKernels.Pool.MAX, 2, 2, 0, g, 0, ints, g, ints));
            refused("pool_mean_bwd: dy needs 12 elements, got a buffer of 10",
                    () -> TrainKernels.poolBwd(be, TrainKernels.Pool.MEAN, 2, 2, 3, ints, null, g, p, 0));
            refused("pool_max_bwd: lengths must be null",
                    () -> TrainKernels.poolBwd(be, TrainKernels.Pool.MAX, 2, 2, 2, ints, ints, g, p, 0));
            refused("pool_max_bwd: dyoff must be >= 0, got -1",
                    () -> TrainKernels.poolBwd(be, TrainKernels.Pool.MAX, 1, 2, 2, null, ints, g, p, -1));
            refused("pool_mean_bwd: lengths needs 5 elements, got a buffer of 4",
                    () -> TrainKernels.poolBwd(be, TrainKernels.Pool.MEAN, 1, 5, 1, b.i32(4, 1), null, g, p, 0));
            double[] after = b.get(p, 10);
            for (double x : after) if (x != 1) throw new AssertionError(backend + ": a refused launch wrote p: " + x);
        }
    }

    /**
     * A raw {@link DeviceBackend#launch} with an I32 buffer for a float* parameter is refused too, where the backend
     * knows its parameters' element types: the cpu backend from its kernel table, OpenCL from the kernels' argument
     * type names. (A CUDA pointer parameter carries no element type; there only the launchers above check.)
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"cpu", "opencl"})
    void rawLaunchChecksBufferTypes(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (TrainTestSupport.Bufs b = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer ints = b.i32(4, 0), floats = b.f32(4, 0);
            refused("expected a F32 buffer, got I32",
                    () -> be.launch(TrainKernels.ARGMAX_ROWS, new long[] {1}, 1, 4, ints, ints));
            refused("expected a I32 buffer, got F32",
                    () -> be.launch(TrainKernels.ARGMAX_ROWS, new long[] {1}, 1, 4, floats, floats));
        }
    }
}
