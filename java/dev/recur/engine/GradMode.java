package dev.recur.engine;

/**
 * How a backward pass writes weight gradients into a gradient space (cuDNN's {@code CUDNN_WGRAD_MODE_SET} and
 * {@code _ADD}): {@code SET} overwrites them; {@code ADD} adds them to what is there, so a trainer accumulating
 * over micro-batches needs no extra buffer and no extra pass.
 */
public enum GradMode {
    SET, ADD
}
