package dev.recur.engine;

import dev.recur.backend.DeviceTensor;

/**
 * The data gradients of a backward pass on device tensors; the weight gradients went into the gradient space the
 * call was given ({@link WeightSpace}, {@link GradMode}).
 *
 * @param dx  same shape and layout as x
 * @param dh0 {@code [L*D, B, Hout]}
 * @param dc0 {@code [L*D, B, H]} for LSTM, else null
 */
public record DeviceRnnGradients(DeviceTensor dx, DeviceTensor dh0, DeviceTensor dc0) implements AutoCloseable {
    /** Caller-supplied result buffers for a backward call; any may be null (then allocated, owned by the result). */
    public static DeviceRnnGradients into(DeviceTensor dx, DeviceTensor dh0, DeviceTensor dc0) {
        return new DeviceRnnGradients(dx, dh0, dc0);
    }

    /** Frees the tensors the call allocated; caller-supplied ones (held as views) stay open. */
    @Override
    public void close() {
        try {
            if (dx != null) dx.close();
        } finally {
            if (dh0 != null) dh0.close();
            if (dc0 != null) dc0.close();
        }
    }
}
