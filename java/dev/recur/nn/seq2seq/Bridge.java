package dev.recur.nn.seq2seq;

/**
 * How the encoder's final states become the decoder's initial states. Decoder layer {@code l} of
 * {@code Ld} takes encoder layer {@code max(0, l + Le - Ld)}: the top layers are aligned, and when the
 * decoder is deeper its extra lower layers share the encoder's first layer.
 * <ul>
 *   <li>{@link #LINEAR_TANH} (default): per decoder layer a learned {@code tanh(W · [h_fwd; h_bwd] + b)}
 *       from the concatenated directions (one direction for a unidirectional encoder); the same for the
 *       LSTM cell state when both are LSTMs (else the decoder's cell state starts at 0). Works for any
 *       widths.</li>
 *   <li>{@link #SUM}: the directions' final states added, no parameters; needs the encoder's per-direction
 *       width equal to the decoder's hidden size.</li>
 *   <li>{@link #ZERO}: the decoder starts from zeros (all information flows through attention).</li>
 * </ul>
 */
public enum Bridge {
    LINEAR_TANH,
    SUM,
    ZERO
}
