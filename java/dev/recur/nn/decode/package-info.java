/**
 * Autoregressive decoding over any {@link dev.recur.nn.decode.StepModel}: {@link dev.recur.nn.decode.Greedy},
 * {@link dev.recur.nn.decode.Sampler} (temperature, seeded) and batched {@link dev.recur.nn.decode.BeamSearch}
 * (width, length normalisation, end token, maximum length).
 */
package dev.recur.nn.decode;
