package dev.recur.nn.decode;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;

/**
 * The device counterpart of {@link StepModel}: an autoregressive model bound to a batch of {@link #batchSize()}
 * inputs whose state, logits and attention stay on a {@link DeviceBackend}, so that a decoder
 * ({@link DeviceDecoding}) can run every step there and download only the finished tokens. Rows are laid out as in
 * {@link StepModel}: {@code K} rows per item, row {@code b·K + k}.
 *
 * <p>The buffers a model returns are its own and valid until its next {@link #step} or {@link #close}; a decoder
 * copies what it keeps. Close it to free the encoded inputs and the state.
 */
public interface DeviceStepModel extends AutoCloseable {
    /** The backend the state and every returned buffer live on. */
    DeviceBackend backend();

    /** Batch items B. */
    int batchSize();

    /** Output vocabulary V. */
    int vocabSize();

    /**
     * (Re)starts with {@code rowsPerItem} identical rows per batch item, from the state the inputs give (a
     * decoder may start again, e.g. with another width).
     */
    void start(int rowsPerItem);

    /** Rows of the current state: {@code batchSize() · rowsPerItem}. */
    int rows();

    /**
     * Feeds {@code tokens[r]} (I32 {@code [rows()]}, on {@link #backend()}) to row {@code r}, advances the state and
     * returns the next-token logits F32 {@code [rows(), V]}.
     */
    DeviceTensor step(DeviceBuffer tokens);

    /**
     * Attention weights F32 {@code [rows(), T]} of the last step over the {@code T} source positions, or null for a
     * model without attention.
     */
    DeviceTensor attention();

    /**
     * Reorders the state: row {@code r} continues from row {@code parents[r]} (I32 {@code [rows()]} on the device, each
     * in {@code [0, rows())}; trusted, since checking would take a download). What beam search needs.
     */
    void select(DeviceBuffer parents);

    @Override
    void close();
}
