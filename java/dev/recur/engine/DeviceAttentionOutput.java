package dev.recur.engine;

import dev.recur.backend.DeviceTensor;

/**
 * Results of an attention forward on device tensors (as {@link AttentionOutput}), owned by this object.
 *
 * @param scores  raw scores {@code [U, B, T]}
 * @param weights masked softmax of the scores {@code [U, B, T]}
 * @param context {@code [U, B, He]}
 */
public record DeviceAttentionOutput(DeviceTensor scores, DeviceTensor weights, DeviceTensor context) implements AutoCloseable {
    @Override
    public void close() {
        try {
            scores.close();
        } finally {
            try {
                weights.close();
            } finally {
                context.close();
            }
        }
    }
}
