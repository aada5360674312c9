package dev.recur.backend.reference;

import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;

/** Elman cell: {@code h' = act(W_ih x̃ + b_ih + W_hh h̃ + b_hh)}, act = tanh or relu. */
final class SimpleCell extends Cell {
    private final boolean relu;

    SimpleCell(RnnConfig c) {
        super(c);
        this.relu = c.cell() == CellType.RNN_RELU;
    }

    @Override
    Step forward(DirectionParams p, double[] x, double[] mx, double[] mh, double[] hPrev, double[] cPrev) {
        Step s = new Step();
        s.xt = Linalg.times(x, mx);
        s.ht = Linalg.times(hPrev, mh);
        int n = p.hidden;
        double[] aIh = new double[n];
        double[] aHh = new double[n];
        projectIh(p, s, aIh);
        projectHh(p, s, s.ht, 0, 1, aHh);
        double[] h = new double[n];
        for (int j = 0; j < n; j++) {
            double pre = aIh[j] + bias(p.bih, j) + aHh[j] + bias(p.bhh, j);
            h[j] = relu ? Math.max(0.0, pre) : Math.tanh(pre);
        }
        s.h = h;
        return s;
    }

    @Override
    StepGrad backward(DirectionParams p, DirectionParams g, Step s, double[] dh, double[] dc, double[] mx, double[] mh) {
        int n = p.hidden;
        double[] dPre = new double[n];
        for (int j = 0; j < n; j++) {
            double deriv = relu ? (s.h[j] > 0 ? 1.0 : 0.0) : 1.0 - s.h[j] * s.h[j];
            dPre[j] = dh[j] * deriv;
        }
        biasBackward(g, dPre, 0, true, true);
        double[] dx = Linalg.times(projectIhBackward(p, g, s, dPre), mx);
        double[] dht = new double[p.out];
        projectHhBackward(p, g, s, s.ht, 0, 1, dPre, dht);
        return new StepGrad(dx, Linalg.times(dht, mh), null);
    }
}
