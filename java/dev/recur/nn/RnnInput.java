package dev.recur.nn;

import dev.recur.tensor.Tensor;

/**
 * Inputs of one forward call, in the network's layout ({@code [T,B,I]}, or {@code [B,T,I]} when
 * batch-first).
 *
 * @param x       the input sequence
 * @param h0      initial hidden state {@code [L*D, B, Hout]}, index {@code layer*D + direction}; null = zeros
 * @param c0      initial cell state {@code [L*D, B, H]} (LSTM only); null = zeros
 * @param lengths per-sequence lengths {@code [B]}, each in [1, T]; null = all T
 */
public record RnnInput(Tensor x, Tensor h0, Tensor c0, int[] lengths) {
    public static RnnInput of(Tensor x) {
        return new RnnInput(x, null, null, null);
    }

    public RnnInput withLengths(int[] lengths) {
        return new RnnInput(x, h0, c0, lengths);
    }

    public RnnInput withState(Tensor h0, Tensor c0) {
        return new RnnInput(x, h0, c0, lengths);
    }
}
