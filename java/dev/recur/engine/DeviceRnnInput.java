package dev.recur.engine;

import dev.recur.backend.DeviceTensor;

/**
 * The inputs of a forward call on device tensors (as {@code RnnInput} for host tensors): {@code x}
 * {@code [T, B, I]} (batch-first {@code [B, T, I]}), optional initial states {@code h0 [L*D, B, Hout]} and
 * {@code c0 [L*D, B, H]} (LSTM), optional int32 {@code lengths [B]}, each in [1, T]. All on one backend. The call
 * reads them on the device and keeps no reference: the caller may reuse them as soon as it returns.
 *
 * <p>Shapes, types and backends are checked before anything runs; the values of {@code lengths} are not, since that
 * would take a download (cuDNN's device-side sequence lengths are trusted the same way). Check them where they are
 * made, or pass host lengths through {@code RnnInput}.
 */
public record DeviceRnnInput(DeviceTensor x, DeviceTensor h0, DeviceTensor c0, DeviceTensor lengths) {
    public static DeviceRnnInput of(DeviceTensor x) {
        return new DeviceRnnInput(x, null, null, null);
    }

    public DeviceRnnInput withStates(DeviceTensor h0, DeviceTensor c0) {
        return new DeviceRnnInput(x, h0, c0, lengths);
    }

    public DeviceRnnInput withLengths(DeviceTensor lengths) {
        return new DeviceRnnInput(x, h0, c0, lengths);
    }
}
