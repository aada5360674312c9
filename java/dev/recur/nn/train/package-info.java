/**
 * Training utilities: optimizers ({@link dev.recur.nn.train.Sgd}, {@link dev.recur.nn.train.Adam}),
 * {@link dev.recur.nn.train.GradientClipping} and scheduled-sampling {@link dev.recur.nn.train.SamplingSchedule}s,
 * which operate on a {@link dev.recur.nn.layers.Parameters}; and {@link dev.recur.nn.train.OptimizerConfig} (SGD with
 * momentum or Nesterov, Adam, AdamW; clipping; frozen, no-decay and learning-rate groups by
 * {@link dev.recur.nn.train.ParamRule}), which makes the host optimizers and drives
 * {@link dev.recur.nn.train.DeviceOptimizer}, the same step on device buffers.
 */
package dev.recur.nn.train;
