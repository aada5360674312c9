package dev.recur.backend.reference;

/**
 * What one cell step of one sequence keeps for backward. Fields a cell does not use stay null; every
 * non-null array counts towards {@link #bytes()}.
 */
final class Step {
    /** Masked input x̃ = x ⊙ m_x. */
    double[] xt;
    /** Masked previous hidden state h̃ = h_{t-1} ⊙ m_h (what meets W_hh). */
    double[] ht;
    /** Unmasked previous hidden state (GRU's z*h). */
    double[] hPrev;
    /** Previous cell state (LSTM). */
    double[] cPrev;
    /** Activated gates, G*H: RNN the output itself, LSTM i,f,g,o (coupled i,g,o), GRU r,z,n. */
    double[] gates;
    /** New cell state (LSTM). */
    double[] c;
    /** o ⊙ tanh(c) before the projection (LSTM with projection). */
    double[] m;
    /** GRU reset-after: W_hn h̃ + b_hn (after layer norm). GRU reset-before: r ⊙ h̃. */
    double[] gruAux;
    /** New hidden state (the step's output). */
    double[] h;
    /** Layer norm: normalised input and recurrent projections per gate block, and 1/std per block. */
    double[] lnIhHat;
    double[] lnIhRstd;
    double[] lnHhHat;
    double[] lnHhRstd;

    long bytes() {
        return 8L * (len(xt) + len(ht) + len(hPrev) + len(cPrev) + len(gates) + len(c) + len(m) + len(gruAux)
                + len(h) + len(lnIhHat) + len(lnIhRstd) + len(lnHhHat) + len(lnHhRstd));
    }

    private static long len(double[] a) {
        return a == null ? 0 : a.length;
    }
}
