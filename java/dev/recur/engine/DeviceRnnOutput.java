package dev.recur.engine;

import dev.recur.backend.DeviceTensor;

/**
 * Results of a forward call on device tensors, in the network's layout (as {@link RnnOutput}); nothing has been
 * copied to the host.
 *
 * @param y     outputs of the last layer {@code [T, B, outputWidth]} (batch-first: {@code [B, T, W]})
 * @param hN    final hidden state per layer and direction {@code [L*D, B, Hout]}
 * @param cN    final cell state {@code [L*D, B, H]} (LSTM), else null
 * @param trace saved activations for backward; null after an inference forward
 */
public record DeviceRnnOutput(DeviceTensor y, DeviceTensor hN, DeviceTensor cN, RnnTrace trace) implements AutoCloseable {
    /**
     * Caller-supplied result buffers for a forward call: any of them may be null (the call then allocates that one,
     * owned by the returned output).
     */
    public static DeviceRnnOutput into(DeviceTensor y, DeviceTensor hN, DeviceTensor cN) {
        return new DeviceRnnOutput(y, hN, cN, null);
    }

    /**
     * Frees the saved activations and the result tensors the call allocated; tensors the caller supplied (which the
     * output holds as views) stay open.
     */
    @Override
    public void close() {
        try {
            if (trace != null) trace.close();
        } finally {
            if (y != null) y.close();
            if (hN != null) hN.close();
            if (cN != null) cN.close();
        }
    }
}
