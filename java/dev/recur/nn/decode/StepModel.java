package dev.recur.nn.decode;

import dev.recur.tensor.Tensor;

/**
 * One step of an autoregressive model, for every hypothesis row at once: what {@link Greedy}, {@link Sampler}
 * and {@link BeamSearch} drive. A model bound to a batch of {@link #batchSize()} inputs (e.g. encoded source
 * sentences) starts with {@code K} rows per item and advances all rows in one call.
 */
public interface StepModel {
    /** Batch items B. */
    int batchSize();

    /** Output vocabulary V. */
    int vocabSize();

    /** The initial state with {@code rowsPerItem} identical rows per batch item (row {@code b·K + k}). */
    DecoderState start(int rowsPerItem);

    /**
     * Feeds {@code tokens[r]} to row {@code r} and returns the next-token logits of every row.
     *
     * @param tokens {@code [state.rows()]}
     */
    Step step(int[] tokens, DecoderState state);

    /**
     * @param logits    {@code [rows, V]} unnormalised scores of the next token
     * @param next      the state after consuming the tokens
     * @param attention {@code [rows, T]} attention weights over the source of this step, or null if the model has none
     */
    record Step(Tensor logits, DecoderState next, Tensor attention) {}
}
