package dev.recur.engine;

import dev.recur.tensor.Tensor;

/**
 * Results of a forward call, in the network's layout.
 *
 * @param y     outputs of the last layer {@code [T, B, outputWidth]}; exactly 0 at padded steps
 * @param hN    final hidden state per layer and direction {@code [L*D, B, Hout]}, each sequence's own last step
 * @param cN    final cell state {@code [L*D, B, H]} (LSTM), else null
 * @param trace saved activations for {@code dev.recur.nn.Rnn#backward}; null after an inference-mode forward
 */
public record RnnOutput(Tensor y, Tensor hN, Tensor cN, RnnTrace trace) implements AutoCloseable {
    @Override
    public void close() {
        if (trace != null) trace.close();
    }
}
