package dev.recur.backend.reference;

import dev.recur.config.RnnConfig;

/**
 * LSTM, gates i,f,g,o (coupled: i,g,o with f = 1 - i), optional peepholes and projection:
 * <pre>
 * pre = LN(W_ih x̃) + b_ih + LN(W_hh h̃) + b_hh
 * i = σ(pre_i + w_ci c_{t-1}),  f = σ(pre_f + w_cf c_{t-1}),  g = tanh(pre_g)
 * c = f c_{t-1} + i g,  o = σ(pre_o + w_co c),  m = o tanh(c),  h = W_hr m (or m)
 * </pre>
 */
final class LstmCell extends Cell {
    private final boolean coupled;
    private final boolean peephole;
    private final boolean projected;
    private final int blockI;
    private final int blockF;
    private final int blockG;
    private final int blockO;

    LstmCell(RnnConfig c) {
        super(c);
        this.coupled = c.coupledGate();
        this.peephole = c.peephole();
        this.projected = c.projSize() > 0;
        this.blockI = 0;
        this.blockF = coupled ? -1 : 1;
        this.blockG = coupled ? 1 : 2;
        this.blockO = coupled ? 2 : 3;
    }

    @Override
    Step forward(DirectionParams p, double[] x, double[] mx, double[] mh, double[] hPrev, double[] cPrev) {
        int hs = p.hidden;
        int gh = p.gates * hs;
        Step s = new Step();
        s.xt = Linalg.times(x, mx);
        s.ht = Linalg.times(hPrev, mh);
        s.cPrev = cPrev.clone();
        double[] aIh = new double[gh];
        double[] aHh = new double[gh];
        projectIh(p, s, aIh);
        projectHh(p, s, s.ht, 0, p.gates, aHh);
        double[] pre = new double[gh];
        for (int r = 0; r < gh; r++) pre[r] = aIh[r] + bias(p.bih, r) + aHh[r] + bias(p.bhh, r);

        double[] gates = new double[gh];
        double[] c = new double[hs];
        double[] m = new double[hs];
        for (int j = 0; j < hs; j++) {
            double cp = cPrev[j];
            double i = Linalg.sigmoid(pre[blockI * hs + j] + (peephole ? p.wci[j] * cp : 0.0));
            double f = coupled ? 1.0 - i : Linalg.sigmoid(pre[blockF * hs + j] + (peephole ? p.wcf[j] * cp : 0.0));
            double gg = Math.tanh(pre[blockG * hs + j]);
            c[j] = f * cp + i * gg;
            double o = Linalg.sigmoid(pre[blockO * hs + j] + (peephole ? p.wco[j] * c[j] : 0.0));
            m[j] = o * Math.tanh(c[j]);
            gates[blockI * hs + j] = i;
            if (!coupled) gates[blockF * hs + j] = f;
            gates[blockG * hs + j] = gg;
            gates[blockO * hs + j] = o;
        }
        s.gates = gates;
        s.c = c;
        if (projected) {
            s.m = m;
            s.h = Linalg.matVec(p.whr, 0, p.out, hs, m);
        } else {
            s.h = m;
        }
        return s;
    }

    @Override
    StepGrad backward(DirectionParams p, DirectionParams g, Step s, double[] dh, double[] dcNext, double[] mx, double[] mh) {
        int hs = p.hidden;
        double[] dm;
        if (projected) {
            dm = new double[hs];
            Linalg.matVecBackward(p.whr, g.whr, 0, p.out, hs, s.m, dh, dm);
        } else {
            dm = dh;
        }
        double[] dPre = new double[p.gates * hs];
        double[] dcPrev = new double[hs];
        for (int j = 0; j < hs; j++) {
            double i = s.gates[blockI * hs + j];
            double f = coupled ? 1.0 - i : s.gates[blockF * hs + j];
            double gg = s.gates[blockG * hs + j];
            double o = s.gates[blockO * hs + j];
            double c = s.c[j];
            double cp = s.cPrev[j];
            double tc = Math.tanh(c);

            double dOut = dm[j] * tc;
            double dc = dcNext[j] + dm[j] * o * (1 - tc * tc);
            double dPreO = dOut * o * (1 - o);
            if (peephole) {
                g.wco[j] += dPreO * c;
                dc += dPreO * p.wco[j];
            }
            double di = dc * gg;
            double dg = dc * i;
            double df = dc * cp;
            double dcp = dc * f;
            double dPreI;
            double dPreF = 0;
            if (coupled) {
                // f = 1 - i: the forget path's gradient flows into i with a minus sign.
                dPreI = (di - df) * i * (1 - i);
            } else {
                dPreI = di * i * (1 - i);
                dPreF = df * f * (1 - f);
            }
            double dPreG = dg * (1 - gg * gg);
            if (peephole) {
                g.wci[j] += dPreI * cp;
                dcp += dPreI * p.wci[j];
                if (!coupled) {
                    g.wcf[j] += dPreF * cp;
                    dcp += dPreF * p.wcf[j];
                }
            }
            dPre[blockI * hs + j] = dPreI;
            if (!coupled) dPre[blockF * hs + j] = dPreF;
            dPre[blockG * hs + j] = dPreG;
            dPre[blockO * hs + j] = dPreO;
            dcPrev[j] = dcp;
        }
        biasBackward(g, dPre, 0, true, true);
        double[] dx = Linalg.times(projectIhBackward(p, g, s, dPre), mx);
        double[] dht = new double[p.out];
        projectHhBackward(p, g, s, s.ht, 0, p.gates, dPre, dht);
        return new StepGrad(dx, Linalg.times(dht, mh), dcPrev);
    }
}
