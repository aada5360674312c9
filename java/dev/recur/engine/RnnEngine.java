package dev.recur.engine;

import dev.recur.backend.DeviceTensor;
import dev.recur.config.DropoutMask;
import dev.recur.tensor.Tensor;

/**
 * What the model API needs of something that runs a whole network: the reference implements it directly in
 * float64, every device backend through the shared schedule ({@code dev.recur.schedule}); the model API picks one
 * per backend ({@code dev.recur.nn.Engines}). {@code dev.recur.nn.Rnn} validates all arguments and converts
 * layouts before calling in, so engines see time-major tensors of the right
 * shapes, lengths in [1, T], and zero tensors in place of absent states and gradients (an engine that
 * {@link #runsOnDevice()} gets null instead, and zeroes them on the device rather than uploading zeros).
 */
public interface RnnEngine extends AutoCloseable {
    /** Replaces the parameters (uploads them, for a device engine). */
    void setWeights(RnnWeights weights);

    /**
     * @param x        {@code [T, B, I]}
     * @param h0       {@code [L*D, B, Hout]}
     * @param c0       {@code [L*D, B, H]} (LSTM) or null
     * @param lengths  {@code [B]}, each in [1, T]
     * @param training save activations for backward and apply dropout
     * @param seed     dropout seed (see {@link DropoutMask})
     */
    RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed);

    /** Backward through time from a trace this engine made; {@code dcN} null for non-LSTM cells. */
    RnnGradients backward(RnnTrace trace, Tensor dy, Tensor dhN, Tensor dcN);

    /**
     * Whether this engine runs on device tensors itself ({@link #forward(DeviceRnnInput, boolean, long,
     * DeviceRnnOutput)}, {@link #backward(RnnTrace, DeviceTensor, DeviceTensor, DeviceTensor, WeightSpace, GradMode,
     * DeviceRnnGradients)}, {@link #weightSpace()}); the model API converts through the host for one that does not
     * (the float64 reference).
     */
    default boolean runsOnDevice() {
        return false;
    }

    /** The network's parameters on the device (the engine's own: write them, then call {@link #weightsUpdated()}). */
    default WeightSpace weightSpace() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": keeps no weights on a device");
    }

    /**
     * Tells the engine its {@link #weightSpace()} was written on the device: whatever copies its kernels read (e.g.
     * transposed matrices) are remade on the device, with no host traffic.
     */
    default void weightsUpdated() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": keeps no weights on a device");
    }

    /**
     * Forward on device tensors (time-major, checked by the model API: right shapes and types, this engine's
     * backend). {@code into} holds optional result buffers (null, or any of its tensors null: allocated).
     */
    default DeviceRnnOutput forward(DeviceRnnInput in, boolean training, long seed, DeviceRnnOutput into) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": does not run on device tensors");
    }

    /**
     * Backward on device tensors: {@code dy}, {@code dhN}, {@code dcN} may be null (zeros); weight gradients go into
     * {@code grads} (null: not written) as {@code mode} says; {@code into} holds optional result buffers.
     */
    default DeviceRnnGradients backward(RnnTrace trace, DeviceTensor dy, DeviceTensor dhN, DeviceTensor dcN,
                                        WeightSpace grads, GradMode mode, DeviceRnnGradients into) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + ": does not run on device tensors");
    }

    @Override
    void close();
}
