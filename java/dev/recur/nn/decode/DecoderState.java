package dev.recur.nn.decode;

/**
 * The recurrent state of {@code rows} decoding hypotheses (row {@code b·K + k} is hypothesis {@code k} of
 * batch item {@code b} when decoding with {@code K} rows per item). Immutable from the decoders' point of view.
 */
public interface DecoderState {
    int rows();

    /** A state whose row {@code i} is this state's row {@code rows[i]} (beam reordering). */
    DecoderState select(int[] rows);
}
