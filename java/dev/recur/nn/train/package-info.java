/**
 * Training utilities: optimizers ({@link dev.recur.nn.train.Sgd}, {@link dev.recur.nn.train.Adam}, both with
 * decoupled weight decay), {@link dev.recur.nn.train.GradientClipping} and scheduled-sampling
 * {@link dev.recur.nn.train.SamplingSchedule}s. All operate on a {@link dev.recur.nn.layers.Parameters}.
 */
package dev.recur.nn.train;
