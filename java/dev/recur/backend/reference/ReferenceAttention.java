package dev.recur.backend.reference;

import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The oracle for attention: float64 loops written from the equations of
 * {@code dev.recur.nn.attention.Attention} and {@link AttentionScore}, with the backward pass derived by hand
 * (and checked against finite differences in the tests). Nothing is fused or reordered for speed.
 *
 * <p>Layouts: {@code dec [U,B,Hd]}, {@code enc [T,B,He]}, scores and weights {@code [U,B,T]},
 * context {@code [U,B,He]}, mask {@code [B*T]} (1 valid, 0 masked).
 */
public final class ReferenceAttention implements AttentionEngine {
    private final AttentionConfig cfg;
    private AttentionWeights weights;

    public ReferenceAttention(AttentionConfig config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.cfg = config;
    }

    @Override
    public void setWeights(AttentionWeights w) {
        this.weights = w.copy();
    }

    @Override
    public AttentionOutput forward(Tensor dec, Tensor enc, int[] mask) {
        return fromScores(scores(dec, enc), enc, mask);
    }

    /** The raw scores {@code [U,B,T]} of this configuration. */
    public Tensor scores(Tensor dec, Tensor enc) {
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0), hd = cfg.decoderSize(), he = cfg.encoderSize();
        double[] d = dec.data(), e = enc.data();
        Tensor s = Tensor.zeros(u, b, t);
        double[] sd = s.data();
        switch (cfg.score()) {
            case DOT, SCALED -> {
                double c = cfg.score() == AttentionScore.SCALED ? 1.0 / Math.sqrt(he) : 1.0;
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++)
                        for (int j = 0; j < t; j++) {
                            double acc = 0;
                            for (int h = 0; h < he; h++) acc += d[(i * b + k) * hd + h] * e[(j * b + k) * he + h];
                            sd[(i * b + k) * t + j] = c * acc;
                        }
            }
            case GENERAL -> {
                double[] wa = weights.get("W_a").data();
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++)
                        for (int j = 0; j < t; j++) {
                            double acc = 0;
                            for (int p = 0; p < hd; p++)
                                for (int q = 0; q < he; q++)
                                    acc += d[(i * b + k) * hd + p] * wa[p * he + q] * e[(j * b + k) * he + q];
                            sd[(i * b + k) * t + j] = acc;
                        }
            }
            case ADDITIVE -> {
                int a = cfg.attentionSize();
                double[] v = weights.get("v").data();
                double[] pe = project(weights.get("W1").data(), a, he, e, t * b);
                double[] pd = project(weights.get("W2").data(), a, hd, d, u * b);
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++)
                        for (int j = 0; j < t; j++) {
                            double acc = 0;
                            for (int r = 0; r < a; r++) acc += v[r] * Math.tanh(pe[(j * b + k) * a + r] + pd[(i * b + k) * a + r]);
                            sd[(i * b + k) * t + j] = acc;
                        }
            }
        }
        return s;
    }

    /** {@code out[n, r] = sum_c w[r, c] * x[n, c]} for {@code rows} vectors {@code x [n, cols]}, {@code w [a, cols]}. */
    private static double[] project(double[] w, int a, int cols, double[] x, int rows) {
        double[] out = new double[rows * a];
        for (int n = 0; n < rows; n++) {
            double[] y = Linalg.matVec(w, 0, a, cols, slice(x, n * cols, cols));
            System.arraycopy(y, 0, out, n * a, a);
        }
        return out;
    }

    private static double[] slice(double[] x, int off, int n) {
        double[] s = new double[n];
        System.arraycopy(x, off, s, 0, n);
        return s;
    }

    /**
     * Masked softmax of raw {@code scores [U,B,T]} over t, then the context: the second half of the forward
     * pass, a function of the scores alone (the tests differentiate it numerically).
     */
    public static AttentionOutput fromScores(Tensor scores, Tensor enc, int[] mask) {
        int u = scores.dim(0), b = scores.dim(1), t = scores.dim(2), he = enc.dim(2);
        double[] s = scores.data(), e = enc.data();
        Tensor w = Tensor.zeros(u, b, t);
        Tensor ctx = Tensor.zeros(u, b, he);
        double[] wd = w.data(), cd = ctx.data();
        for (int i = 0; i < u; i++)
            for (int k = 0; k < b; k++) {
                int row = (i * b + k) * t;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < t; j++) if (mask[k * t + j] != 0) max = Math.max(max, s[row + j]);
                if (max == Double.NEGATIVE_INFINITY) continue; // every position masked: weights and context stay 0
                double sum = 0;
                for (int j = 0; j < t; j++) {
                    if (mask[k * t + j] != 0) {
                        wd[row + j] = Math.exp(s[row + j] - max);
                        sum += wd[row + j];
                    }
                }
                for (int j = 0; j < t; j++) wd[row + j] /= sum;
                for (int j = 0; j < t; j++)
                    for (int h = 0; h < he; h++) cd[(i * b + k) * he + h] += wd[row + j] * e[(j * b + k) * he + h];
            }
        return new AttentionOutput(scores, w, ctx);
    }

    @Override
    public AttentionGradients backward(Tensor dec, Tensor enc, int[] mask, Tensor dcontext) {
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0), hd = cfg.decoderSize(), he = cfg.encoderSize();
        double[] d = dec.data(), e = enc.data(), dc = dcontext.data();
        double[] w = forward(dec, enc, mask).weights().data();
        Tensor ddecT = Tensor.zeros(u, b, hd), dencT = Tensor.zeros(t, b, he), dsT = Tensor.zeros(u, b, t);
        double[] ddec = ddecT.data(), denc = dencT.data(), ds = dsT.data();

        // context = w · enc
        double[] dw = new double[u * b * t];
        for (int i = 0; i < u; i++)
            for (int k = 0; k < b; k++)
                for (int j = 0; j < t; j++) {
                    int wi = (i * b + k) * t + j;
                    double acc = 0;
                    for (int h = 0; h < he; h++) {
                        acc += dc[(i * b + k) * he + h] * e[(j * b + k) * he + h];
                        denc[(j * b + k) * he + h] += w[wi] * dc[(i * b + k) * he + h];
                    }
                    dw[wi] = acc;
                }
        // softmax over the valid positions: ds = w * (dw - sum w*dw); masked positions do not depend on s.
        for (int i = 0; i < u; i++)
            for (int k = 0; k < b; k++) {
                int row = (i * b + k) * t;
                double dot = 0;
                for (int j = 0; j < t; j++) dot += w[row + j] * dw[row + j];
                for (int j = 0; j < t; j++) ds[row + j] = mask[k * t + j] != 0 ? w[row + j] * (dw[row + j] - dot) : 0.0;
            }

        Map<String, Tensor> dweights = new LinkedHashMap<>();
        switch (cfg.score()) {
            case DOT, SCALED -> {
                double c = cfg.score() == AttentionScore.SCALED ? 1.0 / Math.sqrt(he) : 1.0;
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++)
                        for (int j = 0; j < t; j++) {
                            double g = c * ds[(i * b + k) * t + j];
                            for (int h = 0; h < he; h++) {
                                ddec[(i * b + k) * hd + h] += g * e[(j * b + k) * he + h];
                                denc[(j * b + k) * he + h] += g * d[(i * b + k) * hd + h];
                            }
                        }
            }
            case GENERAL -> {
                double[] wa = weights.get("W_a").data();
                Tensor dwaT = Tensor.zeros(hd, he);
                double[] dwa = dwaT.data();
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++) {
                        // s[t] = dec · W_a · enc[t]: with q = dec·W_a and r_t = W_a·enc[t]
                        double[] q = new double[he];
                        for (int p = 0; p < hd; p++)
                            for (int r = 0; r < he; r++) q[r] += d[(i * b + k) * hd + p] * wa[p * he + r];
                        double[] dq = new double[he];
                        for (int j = 0; j < t; j++) {
                            double g = ds[(i * b + k) * t + j];
                            for (int r = 0; r < he; r++) {
                                dq[r] += g * e[(j * b + k) * he + r];
                                denc[(j * b + k) * he + r] += g * q[r];
                            }
                        }
                        for (int p = 0; p < hd; p++) {
                            double acc = 0;
                            for (int r = 0; r < he; r++) {
                                acc += wa[p * he + r] * dq[r];
                                dwa[p * he + r] += d[(i * b + k) * hd + p] * dq[r];
                            }
                            ddec[(i * b + k) * hd + p] += acc;
                        }
                    }
                dweights.put("W_a", dwaT);
            }
            case ADDITIVE -> {
                int a = cfg.attentionSize();
                double[] w1 = weights.get("W1").data(), w2 = weights.get("W2").data(), v = weights.get("v").data();
                double[] pe = project(w1, a, he, e, t * b);
                double[] pd = project(w2, a, hd, d, u * b);
                double[] dpe = new double[t * b * a], dpd = new double[u * b * a];
                Tensor dvT = Tensor.zeros(a), dw1T = Tensor.zeros(a, he), dw2T = Tensor.zeros(a, hd);
                double[] dv = dvT.data(), dw1 = dw1T.data(), dw2 = dw2T.data();
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++)
                        for (int j = 0; j < t; j++) {
                            double g = ds[(i * b + k) * t + j];
                            for (int r = 0; r < a; r++) {
                                double th = Math.tanh(pe[(j * b + k) * a + r] + pd[(i * b + k) * a + r]);
                                dv[r] += g * th;
                                double dz = g * v[r] * (1 - th * th);
                                dpe[(j * b + k) * a + r] += dz;
                                dpd[(i * b + k) * a + r] += dz;
                            }
                        }
                backProject(w1, dw1, a, he, e, dpe, denc, t * b);
                backProject(w2, dw2, a, hd, d, dpd, ddec, u * b);
                dweights.put("W1", dw1T);
                dweights.put("W2", dw2T);
                dweights.put("v", dvT);
            }
        }
        return new AttentionGradients(dsT, ddecT, dencT, dweights);
    }

    /** Backward of {@link #project}: accumulates into {@code dw [a, cols]} and {@code dx [rows, cols]}. */
    private static void backProject(double[] w, double[] dw, int a, int cols, double[] x, double[] dy, double[] dx, int rows) {
        for (int n = 0; n < rows; n++) {
            double[] dxn = new double[cols];
            Linalg.matVecBackward(w, dw, 0, a, cols, slice(x, n * cols, cols), slice(dy, n * a, a), dxn);
            for (int c = 0; c < cols; c++) dx[n * cols + c] += dxn[c];
        }
    }

    @Override
    public void close() {
        // Nothing held.
    }
}
