package dev.recur.engine;

import dev.recur.backend.DeviceTensor;
import dev.recur.tensor.Tensor;

/**
 * What the model API needs of something that runs attention: the reference implements it in float64
 * ({@code dev.recur.backend.reference.ReferenceAttention}), the {@code cpu} backend fused per batch row
 * ({@code dev.recur.backend.cpu.CpuAttention}), every other device backend through
 * {@code dev.recur.schedule.AttentionSchedule}; the model API picks one per backend ({@code dev.recur.nn.Engines}).
 * {@code dev.recur.nn.attention.Attention} validates every argument first, so an engine sees tensors of the right shapes and a mask of 0/1 ints.
 */
public interface AttentionEngine extends AutoCloseable {
    /** Replaces the parameters (uploads them, for a device engine). */
    void setWeights(AttentionWeights weights);

    /**
     * @param dec  {@code [U, B, Hd]}
     * @param enc  {@code [T, B, He]}
     * @param mask {@code [B*T]} row-major, 1 = valid, 0 = masked
     */
    AttentionOutput forward(Tensor dec, Tensor enc, int[] mask);

    /** Gradients of {@code sum(context * dcontext)} with {@code dcontext [U, B, He]}; recomputes the forward. */
    AttentionGradients backward(Tensor dec, Tensor enc, int[] mask, Tensor dcontext);

    /** Whether this engine runs on device tensors itself; the model API uses another engine for them otherwise. */
    default boolean runsOnDevice() {
        return false;
    }

    /**
     * Forward on device tensors, checked by the model API: {@code dec [U,B,Hd]}, {@code enc [T,B,He]} (F32),
     * {@code mask [B,T]} (I32 0/1, or null: nothing masked), all on this engine's backend.
     */
    default DeviceAttentionOutput forward(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": does not run on device tensors");
    }

    /**
     * Backward on device tensors (the forward recomputed): the data gradients come back; each parameter's gradient
     * goes into {@code grads.get(name)} (a device tensor of the parameter's shape; null map: not written) as
     * {@code mode} says.
     */
    default DeviceAttentionGradients backward(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask, DeviceTensor dcontext,
                                              java.util.Map<String, DeviceTensor> grads, GradMode mode) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": does not run on device tensors");
    }

    /**
     * The parameters the device-tensor calls read, one device buffer per name of the configuration's weight shapes
     * (empty for dot and scaled), owned by this engine: written in place they take effect at the next call, with
     * nothing uploaded. Only for an engine that {@link #runsOnDevice()}.
     */
    default java.util.Map<String, dev.recur.backend.DeviceBuffer> deviceWeights() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": keeps no parameters on the device");
    }

    @Override
    void close();
}
