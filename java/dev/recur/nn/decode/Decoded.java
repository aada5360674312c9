package dev.recur.nn.decode;

import java.util.List;

/**
 * The result of decoding a batch.
 *
 * @param tokens    per batch item, the generated tokens without the end token
 * @param finished  per item, whether the end token was produced (else the maximum length was reached)
 * @param logProb   per item, the sum of the log-probabilities of the generated tokens (including the end token),
 *                  or null when the caller asked for tokens only ({@code Seq2Seq.greedyTokens})
 * @param score     per item, the score the decoder ranked by ({@code logProb} for greedy and sampling; the
 *                  length-normalised score for beam search), or null when the caller asked for tokens only
 * @param attention per item, the attention weights of each generated step {@code [steps][T]}, or null when the
 *                  model reports none or the caller asked for tokens only
 */
public record Decoded(List<int[]> tokens, boolean[] finished, double[] logProb, double[] score, List<double[][]> attention) {
}
