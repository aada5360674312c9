package dev.recur.nn.seq2seq;

/**
 * Where attention enters the decoder.
 * <ul>
 *   <li>{@link #NONE}: no attention; the output layer sees only the decoder state.</li>
 *   <li>{@link #LUONG}: the decoder steps first, {@code h_t = RNN(h_{t-1}, x_t)}, then attends with {@code h_t}
 *       as the query; the output layer sees {@code [h_t; c_t]}. With teacher forcing the decoder runs all
 *       target steps in one {@code Rnn} call.</li>
 *   <li>{@link #BAHDANAU}: the context of the previous state enters the decoder input:
 *       {@code c_t = attend(h_{t-1})}, {@code h_t = RNN(h_{t-1}, [x_t; c_t])} (the query is the top layer's
 *       state); the output layer sees {@code [h_t; c_t]}. Always a per-step loop.</li>
 * </ul>
 * In both styles the output is {@code logits = W_out · tanh(W_c · [h_t; c_t] + b_c) + b_out}.
 */
public enum AttentionStyle {
    NONE,
    LUONG,
    BAHDANAU
}
