package dev.recur.engine;

import dev.recur.tensor.Tensor;

/**
 * The forward result of attention for decoder states {@code [U, B, Hd]} over encoder states {@code [T, B, He]}.
 *
 * @param scores  {@code [U, B, T]} the raw scores, before masking (masked positions hold their score too)
 * @param weights {@code [U, B, T]} the masked softmax over encoder positions: exactly 0 where masked, and
 *                0 everywhere in a row whose positions are all masked
 * @param context {@code [U, B, He]} {@code sum_t weights[u,b,t] * enc[t,b,:]}
 */
public record AttentionOutput(Tensor scores, Tensor weights, Tensor context) {
}
