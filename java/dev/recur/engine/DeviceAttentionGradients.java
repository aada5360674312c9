package dev.recur.engine;

import dev.recur.backend.DeviceTensor;

/**
 * The data gradients of an attention backward on device tensors, owned by this object; the parameter gradients
 * went into the caller's tensors ({@link GradMode}).
 *
 * @param dscores gradient on the raw scores {@code [U, B, T]}
 * @param ddec    {@code [U, B, Hd]}
 * @param denc    {@code [T, B, He]}
 */
public record DeviceAttentionGradients(DeviceTensor dscores, DeviceTensor ddec, DeviceTensor denc) implements AutoCloseable {
    @Override
    public void close() {
        try {
            dscores.close();
        } finally {
            try {
                ddec.close();
            } finally {
                denc.close();
            }
        }
    }
}
