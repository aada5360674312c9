package dev.recur.config;

import java.util.Locale;

/**
 * The recurrent cells, with PyTorch's gate order.
 *
 * <pre>
 * RNN_TANH  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
 * RNN_RELU  h' = relu(W_ih x + b_ih + W_hh h + b_hh)
 * LSTM      gates i,f,g,o:  i,f,o = sigmoid(.), g = tanh(.)
 *           c' = f*c + i*g,   h' = o*tanh(c')      (projection: h' = W_hr (o*tanh(c')))
 *           peephole: i,f see w_ci*c, w_cf*c; o sees w_co*c'
 *           coupled gate: gates i,g,o only (G=3), f = 1 - i
 * GRU       gates r,z,n:  r,z = sigmoid(.)
 *           reset AFTER  (PyTorch, cuDNN): n = tanh(W_in x + b_in + r*(W_hn h + b_hn))
 *           reset BEFORE (Cho et al. 2014): n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)
 *           h' = (1-z)*n + z*h
 * </pre>
 */
public enum CellType {
    RNN_TANH(1),
    RNN_RELU(1),
    LSTM(4),
    GRU(3);

    private final int gates;

    CellType(int gates) {
        this.gates = gates;
    }

    /** Gate blocks in the weight matrices (LSTM with a coupled gate has 3: see {@link RnnConfig#gates()}). */
    public int gates() {
        return gates;
    }

    public boolean isLstm() {
        return this == LSTM;
    }

    /** Parses {@code lstm}, {@code gru}, {@code rnn_tanh}, {@code rnn_relu} (any case). */
    public static CellType parse(String s) {
        for (CellType c : values()) {
            if (c.name().equalsIgnoreCase(s)) return c;
        }
        throw new IllegalArgumentException("cell: expected one of lstm, gru, rnn_tanh, rnn_relu, got '" + s + "'");
    }

    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
