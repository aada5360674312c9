package dev.recur.backend.reference;

import dev.recur.config.RnnConfig;

/** One step of a recurrent cell for one sequence, forward and backward, written from the equations. */
abstract class Cell {
    final RnnConfig config;

    Cell(RnnConfig config) {
        this.config = config;
    }

    static Cell of(RnnConfig c) {
        return switch (c.cell()) {
            case RNN_TANH, RNN_RELU -> new SimpleCell(c);
            case LSTM -> new LstmCell(c);
            case GRU -> new GruCell(c);
        };
    }

    /**
     * @param x     the layer input at this step, width {@code p.in}
     * @param mx    input dropout mask (all ones when off)
     * @param mh    recurrent dropout mask (all ones when off)
     * @param hPrev h_{t-1}, width Hout
     * @param cPrev c_{t-1} (LSTM) or null
     * @return the step's saved values; {@code h} (and {@code c} for LSTM) are the new state
     */
    abstract Step forward(DirectionParams p, double[] x, double[] mx, double[] mh, double[] hPrev, double[] cPrev);

    /**
     * Backward of one step. {@code dh} is the total gradient reaching h_t, {@code dc} the gradient reaching
     * c_t from later steps (LSTM, else null). Accumulates parameter gradients into {@code g}.
     */
    abstract StepGrad backward(DirectionParams p, DirectionParams g, Step s, double[] dh, double[] dc,
                               double[] mx, double[] mh);

    /** Gradients with respect to a step's inputs: the unmasked layer input, h_{t-1} and c_{t-1}. */
    record StepGrad(double[] dx, double[] dhPrev, double[] dcPrev) {}

    /** The input projection W_ih x̃ of all gate blocks into {@code aIh}, layer-normalised per block when configured. */
    void projectIh(DirectionParams p, Step s, double[] aIh) {
        double[] v = Linalg.matVec(p.wih, 0, p.gates * p.hidden, p.in, s.xt);
        System.arraycopy(v, 0, aIh, 0, v.length);
        if (config.layerNorm()) {
            s.lnIhHat = new double[p.gates * p.hidden];
            s.lnIhRstd = new double[p.gates];
            for (int blk = 0; blk < p.gates; blk++) {
                s.lnIhRstd[blk] = Linalg.layerNormBlock(aIh, blk * p.hidden, p.hidden, p.lnIhWeight, p.lnIhBias,
                        s.lnIhHat, RnnConfig.LAYER_NORM_EPS);
            }
        }
    }

    /** Recurrent projection of gate blocks [g0, g1) from {@code hIn} (normally h̃) into {@code aHh}. */
    void projectHh(DirectionParams p, Step s, double[] hIn, int g0, int g1, double[] aHh) {
        int hs = p.hidden;
        double[] v = Linalg.matVec(p.whh, g0 * hs, (g1 - g0) * hs, p.out, hIn);
        System.arraycopy(v, 0, aHh, g0 * hs, v.length);
        if (config.layerNorm()) {
            if (s.lnHhHat == null) {
                s.lnHhHat = new double[p.gates * hs];
                s.lnHhRstd = new double[p.gates];
            }
            for (int blk = g0; blk < g1; blk++) {
                s.lnHhRstd[blk] = Linalg.layerNormBlock(aHh, blk * hs, hs, p.lnHhWeight, p.lnHhBias, s.lnHhHat,
                        RnnConfig.LAYER_NORM_EPS);
            }
        }
    }

    /** Backward of {@link #projectIh}: {@code dA} is the gradient of the (normalised) projection; returns dx̃. */
    double[] projectIhBackward(DirectionParams p, DirectionParams g, Step s, double[] dA) {
        double[] d = dA.clone();
        if (config.layerNorm()) {
            for (int blk = 0; blk < p.gates; blk++) {
                Linalg.layerNormBlockBackward(d, blk * p.hidden, p.hidden, p.lnIhWeight, g.lnIhWeight, g.lnIhBias,
                        s.lnIhHat, s.lnIhRstd[blk]);
            }
        }
        double[] dxt = new double[p.in];
        Linalg.matVecBackward(p.wih, g.wih, 0, p.gates * p.hidden, p.in, s.xt, d, dxt);
        return dxt;
    }

    /**
     * Backward of {@link #projectHh} for blocks [g0, g1): {@code dA} holds the gradient of the whole G*H
     * projection (only that range is read); accumulates the gradient of {@code hIn} into {@code dhIn}.
     */
    void projectHhBackward(DirectionParams p, DirectionParams g, Step s, double[] hIn, int g0, int g1, double[] dA,
                           double[] dhIn) {
        int hs = p.hidden;
        double[] d = new double[(g1 - g0) * hs];
        System.arraycopy(dA, g0 * hs, d, 0, d.length);
        if (config.layerNorm()) {
            // The block helpers index by absolute offset, so work on a full-width copy.
            double[] full = new double[p.gates * hs];
            System.arraycopy(d, 0, full, g0 * hs, d.length);
            for (int blk = g0; blk < g1; blk++) {
                Linalg.layerNormBlockBackward(full, blk * hs, hs, p.lnHhWeight, g.lnHhWeight, g.lnHhBias, s.lnHhHat,
                        s.lnHhRstd[blk]);
            }
            System.arraycopy(full, g0 * hs, d, 0, d.length);
        }
        Linalg.matVecBackward(p.whh, g.whh, g0 * hs, (g1 - g0) * hs, p.out, hIn, d, dhIn);
    }

    /** Adds the gradient of a pre-activation to both biases (they enter every pre-activation as a sum). */
    static void biasBackward(DirectionParams g, double[] dPre, int off, boolean ih, boolean hh) {
        for (int i = 0; i < dPre.length; i++) {
            if (ih && g.bih != null) g.bih[off + i] += dPre[i];
            if (hh && g.bhh != null) g.bhh[off + i] += dPre[i];
        }
    }

    static double bias(double[] b, int i) {
        return b == null ? 0.0 : b[i];
    }
}
