package dev.recur.backend.reference;

import dev.recur.config.GruReset;
import dev.recur.config.RnnConfig;

/**
 * GRU, gates r,z,n:
 * <pre>
 * r = σ(a_ih_r + b_ir + a_hh_r + b_hr),  z = σ(a_ih_z + b_iz + a_hh_z + b_hz)
 * reset after:  n = tanh(a_ih_n + b_in + r ⊙ (LN(W_hn h̃) + b_hn))
 * reset before: n = tanh(a_ih_n + b_in + LN(W_hn (r ⊙ h̃)) + b_hn)
 * h' = (1 - z) ⊙ n + z ⊙ h            (z multiplies the unmasked h)
 * </pre>
 * where a_ih = LN(W_ih x̃) and a_hh = LN(W_hh h̃), LN per gate block and only with layer norm.
 */
final class GruCell extends Cell {
    private static final int R = 0;
    private static final int Z = 1;
    private static final int N = 2;
    private final boolean resetAfter;

    GruCell(RnnConfig c) {
        super(c);
        this.resetAfter = c.gruReset() == GruReset.AFTER;
    }

    @Override
    Step forward(DirectionParams p, double[] x, double[] mx, double[] mh, double[] hPrev, double[] cPrev) {
        int hs = p.hidden;
        Step s = new Step();
        s.xt = Linalg.times(x, mx);
        s.ht = Linalg.times(hPrev, mh);
        s.hPrev = hPrev.clone();
        double[] aIh = new double[3 * hs];
        double[] aHh = new double[3 * hs];
        projectIh(p, s, aIh);
        projectHh(p, s, s.ht, R, N, aHh);
        double[] gates = new double[3 * hs];
        for (int j = 0; j < hs; j++) {
            gates[R * hs + j] = Linalg.sigmoid(aIh[R * hs + j] + bias(p.bih, R * hs + j) + aHh[R * hs + j] + bias(p.bhh, R * hs + j));
            gates[Z * hs + j] = Linalg.sigmoid(aIh[Z * hs + j] + bias(p.bih, Z * hs + j) + aHh[Z * hs + j] + bias(p.bhh, Z * hs + j));
        }
        double[] aux = new double[hs];
        if (resetAfter) {
            projectHh(p, s, s.ht, N, N + 1, aHh);
            for (int j = 0; j < hs; j++) {
                aux[j] = aHh[N * hs + j] + bias(p.bhh, N * hs + j);
                gates[N * hs + j] = Math.tanh(aIh[N * hs + j] + bias(p.bih, N * hs + j) + gates[R * hs + j] * aux[j]);
            }
        } else {
            for (int j = 0; j < hs; j++) aux[j] = gates[R * hs + j] * s.ht[j];
            projectHh(p, s, aux, N, N + 1, aHh);
            for (int j = 0; j < hs; j++) {
                gates[N * hs + j] = Math.tanh(aIh[N * hs + j] + bias(p.bih, N * hs + j) + aHh[N * hs + j]
                        + bias(p.bhh, N * hs + j));
            }
        }
        double[] h = new double[hs];
        for (int j = 0; j < hs; j++) {
            double z = gates[Z * hs + j];
            h[j] = (1 - z) * gates[N * hs + j] + z * hPrev[j];
        }
        s.gates = gates;
        s.gruAux = aux;
        s.h = h;
        return s;
    }

    @Override
    StepGrad backward(DirectionParams p, DirectionParams g, Step s, double[] dh, double[] dc, double[] mx, double[] mh) {
        int hs = p.hidden;
        double[] dAih = new double[3 * hs];
        double[] dAhh = new double[3 * hs];
        double[] dhPrev = new double[hs];
        double[] dz = new double[hs];
        double[] dPreN = new double[hs];
        for (int j = 0; j < hs; j++) {
            double z = s.gates[Z * hs + j];
            double n = s.gates[N * hs + j];
            dhPrev[j] = dh[j] * z;
            dz[j] = dh[j] * (s.hPrev[j] - n);
            dPreN[j] = dh[j] * (1 - z) * (1 - n * n);
            dAih[N * hs + j] = dPreN[j];
            if (g.bih != null) g.bih[N * hs + j] += dPreN[j];
        }
        double[] dr = new double[hs];
        double[] dht = new double[p.out];
        if (resetAfter) {
            for (int j = 0; j < hs; j++) {
                double r = s.gates[R * hs + j];
                dr[j] = dPreN[j] * s.gruAux[j];
                dAhh[N * hs + j] = dPreN[j] * r;
                if (g.bhh != null) g.bhh[N * hs + j] += dPreN[j] * r;
            }
            projectHhBackward(p, g, s, s.ht, N, N + 1, dAhh, dht);
        } else {
            for (int j = 0; j < hs; j++) {
                dAhh[N * hs + j] = dPreN[j];
                if (g.bhh != null) g.bhh[N * hs + j] += dPreN[j];
            }
            double[] dRh = new double[hs];
            projectHhBackward(p, g, s, s.gruAux, N, N + 1, dAhh, dRh);
            for (int j = 0; j < hs; j++) {
                dr[j] = dRh[j] * s.ht[j];
                dht[j] += dRh[j] * s.gates[R * hs + j];
            }
        }
        for (int j = 0; j < hs; j++) {
            double r = s.gates[R * hs + j];
            double z = s.gates[Z * hs + j];
            double dPreR = dr[j] * r * (1 - r);
            double dPreZ = dz[j] * z * (1 - z);
            dAih[R * hs + j] = dPreR;
            dAih[Z * hs + j] = dPreZ;
            dAhh[R * hs + j] = dPreR;
            dAhh[Z * hs + j] = dPreZ;
            if (g.bih != null) {
                g.bih[R * hs + j] += dPreR;
                g.bih[Z * hs + j] += dPreZ;
            }
            if (g.bhh != null) {
                g.bhh[R * hs + j] += dPreR;
                g.bhh[Z * hs + j] += dPreZ;
            }
        }
        projectHhBackward(p, g, s, s.ht, R, N, dAhh, dht);
        double[] dx = Linalg.times(projectIhBackward(p, g, s, dAih), mx);
        for (int j = 0; j < hs; j++) dhPrev[j] += dht[j] * mh[j];
        return new StepGrad(dx, dhPrev, null);
    }
}
