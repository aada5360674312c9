package dev.recur.backend.reference;

import dev.recur.config.CellType;
import dev.recur.config.DropoutMask;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnTrace;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The float64 oracle for a whole network: every layer, direction, sequence and step computed one at a time
 * from the equations in {@link CellType}, {@link RnnConfig} and {@link DropoutMask}, and
 * backward through time by the chain rule, step by step.
 *
 * <p>Sequences of a batch are independent within a layer, so each one runs its own loop over its own
 * length: the forward direction over {@code t = 0 .. len-1}, the reverse over {@code t = len-1 .. 0}.
 * Outputs at padded steps stay exactly zero, and their upstream gradients are discarded before use.
 */
public final class ReferenceRnn implements RnnEngine {
    private final RnnConfig config;
    private final Cell cell;
    /** [layer][direction], a private copy taken by {@link #setWeights}. */
    private DirectionParams[][] params;
    private boolean closed;

    public ReferenceRnn(RnnConfig config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.config = config;
        this.cell = Cell.of(config);
    }

    @Override
    public void setWeights(RnnWeights weights) {
        ensureOpen();
        if (weights == null) throw new IllegalArgumentException("weights: must not be null");
        // Re-validates names and shapes against this engine's configuration.
        RnnWeights w = weights.config().equals(config) ? weights : RnnWeights.of(config, weights.asMap());
        DirectionParams[][] p = new DirectionParams[config.numLayers()][config.directions()];
        for (int k = 0; k < config.numLayers(); k++) {
            for (int d = 0; d < config.directions(); d++) p[k][d] = DirectionParams.copyOf(w, k, d);
        }
        this.params = p;
    }

    @Override
    public RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed) {
        ensureOpen();
        if (params == null) throw new IllegalStateException("ReferenceRnn: setWeights must be called before forward");
        int tLen = x.dim(0);
        int batch = x.dim(1);
        int layers = config.numLayers();
        int dirs = config.directions();
        int hout = config.outSize();
        int hs = config.hiddenSize();
        boolean lstm = config.cell() == CellType.LSTM;
        DirectionParams[][] p = params;

        double[][][] in = toArray(x);
        double[] hN = new double[layers * dirs * batch * hout];
        double[] cN = lstm ? new double[layers * dirs * batch * hs] : null;
        Step[][][][] steps = training ? new Step[layers][dirs][][] : null;
        double[][][][][] dirOutputs = training ? new double[layers][][][][] : null;
        double[][][] out = null;
        for (int k = 0; k < layers; k++) {
            double[][][][] yd = new double[dirs][tLen][batch][hout];
            for (int d = 0; d < dirs; d++) {
                int sd = k * dirs + d;
                double[][] mx = inputMask(k, d, batch, p[k][d].in, training, seed);
                double[][] mh = recurrentMask(k, d, batch, training, seed);
                Step[][] st = new Step[tLen][batch];
                for (int b = 0; b < batch; b++) {
                    double[] h = slice(h0.data(), (sd * batch + b) * hout, hout);
                    double[] c = lstm ? slice(c0.data(), (sd * batch + b) * hs, hs) : null;
                    for (int s = 0; s < lengths[b]; s++) {
                        int t = d == 0 ? s : lengths[b] - 1 - s;
                        Step step = cell.forward(p[k][d], in[t][b], mx[b], mh[b], h, c);
                        h = step.h;
                        c = step.c;
                        yd[d][t][b] = step.h.clone();
                        st[t][b] = step;
                    }
                    System.arraycopy(h, 0, hN, (sd * batch + b) * hout, hout);
                    if (lstm) System.arraycopy(c, 0, cN, (sd * batch + b) * hs, hs);
                }
                if (training) steps[k][d] = st;
            }
            // Only the product merge needs the directions' outputs again in backward.
            if (training && config.bidirectional() && config.merge() == MergeMode.MUL) dirOutputs[k] = yd;
            out = merge(yd, tLen, batch);
            if (config.residualAt(k)) {
                for (int t = 0; t < tLen; t++)
                    for (int b = 0; b < batch; b++) Linalg.addInto(out[t][b], in[t][b]);
            }
            zeroPadded(out, lengths);
            if (k < layers - 1) {
                in = out;
                if (training && config.dropout() > 0) {
                    in = copy3(out);
                    applyBetweenLayers(in, k, seed);
                }
            }
        }
        Tensor y = fromArray(out, tLen, batch, config.outputWidth());
        Tensor hNt = Tensor.of(hN, layers * dirs, batch, hout);
        Tensor cNt = lstm ? Tensor.of(cN, layers * dirs, batch, hs) : null;
        RnnTrace trace = training ? new Trace(this, p, lengths.clone(), tLen, batch, seed, steps, dirOutputs) : null;
        return new RnnOutput(y, hNt, cNt, trace);
    }

    @Override
    public RnnGradients backward(RnnTrace trace, Tensor dy, Tensor dhN, Tensor dcN) {
        ensureOpen();
        if (!(trace instanceof Trace tr) || tr.owner != this) {
            throw new IllegalArgumentException("trace: expected a trace made by this reference engine's forward, got "
                    + (trace == null ? "null" : trace.getClass().getName()));
        }
        if (tr.closed) throw new IllegalStateException("trace: used after close()");
        int tLen = tr.tLen;
        int batch = tr.batch;
        int[] lengths = tr.lengths;
        int layers = config.numLayers();
        int dirs = config.directions();
        int hout = config.outSize();
        int hs = config.hiddenSize();
        boolean lstm = config.cell() == CellType.LSTM;
        DirectionParams[][] p = tr.params;

        DirectionParams[][] grads = new DirectionParams[layers][dirs];
        for (int k = 0; k < layers; k++)
            for (int d = 0; d < dirs; d++) grads[k][d] = DirectionParams.zerosLike(p[k][d]);
        double[] dh0 = new double[layers * dirs * batch * hout];
        double[] dc0 = lstm ? new double[layers * dirs * batch * hs] : null;

        double[][][] dOut = toArray(dy);
        zeroPadded(dOut, lengths);
        double[][][] dIn = null;
        for (int k = layers - 1; k >= 0; k--) {
            int inWidth = config.layerInputSize(k);
            dIn = new double[tLen][batch][inWidth];
            if (config.residualAt(k)) {
                for (int t = 0; t < tLen; t++)
                    for (int b = 0; b < batch; b++) Linalg.addInto(dIn[t][b], dOut[t][b]);
            }
            double[][][][] dyd = mergeBackward(dOut, tr.dirOutputs == null ? null : tr.dirOutputs[k], tLen, batch);
            for (int d = 0; d < dirs; d++) {
                int sd = k * dirs + d;
                double[][] mx = inputMask(k, d, batch, p[k][d].in, true, tr.seed);
                double[][] mh = recurrentMask(k, d, batch, true, tr.seed);
                Step[][] st = tr.steps[k][d];
                for (int b = 0; b < batch; b++) {
                    double[] dh = slice(dhN.data(), (sd * batch + b) * hout, hout);
                    double[] dc = lstm ? slice(dcN.data(), (sd * batch + b) * hs, hs) : null;
                    for (int s = lengths[b] - 1; s >= 0; s--) {
                        int t = d == 0 ? s : lengths[b] - 1 - s;
                        Linalg.addInto(dh, dyd[d][t][b]);
                        Cell.StepGrad sg = cell.backward(p[k][d], grads[k][d], st[t][b], dh, dc, mx[b], mh[b]);
                        Linalg.addInto(dIn[t][b], sg.dx());
                        dh = sg.dhPrev();
                        dc = sg.dcPrev();
                    }
                    System.arraycopy(dh, 0, dh0, (sd * batch + b) * hout, hout);
                    if (lstm) System.arraycopy(dc, 0, dc0, (sd * batch + b) * hs, hs);
                }
            }
            if (k > 0) {
                if (config.dropout() > 0) applyBetweenLayers(dIn, k - 1, tr.seed);
                // The previous layer's outputs at padded steps are forced to 0, so nothing flows through them.
                zeroPadded(dIn, lengths);
                dOut = dIn;
            }
        }
        Map<String, Tensor> wg = new LinkedHashMap<>();
        LinkedHashMap<String, int[]> shapes = RnnWeights.shapes(config);
        for (int k = 0; k < layers; k++)
            for (int d = 0; d < dirs; d++) grads[k][d].exportTo(wg, shapes);
        // Keep PyTorch's order, as RnnWeights.shapes lists it.
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        for (String name : shapes.keySet()) ordered.put(name, wg.get(name));
        return new RnnGradients(fromArray(dIn, tLen, batch, config.inputSize()),
                Tensor.of(dh0, layers * dirs, batch, hout),
                lstm ? Tensor.of(dc0, layers * dirs, batch, hs) : null,
                ordered);
    }

    private double[][][] merge(double[][][][] yd, int tLen, int batch) {
        int hout = config.outSize();
        if (!config.bidirectional()) return yd[0];
        MergeMode mode = config.merge();
        double[][][] out = new double[tLen][batch][config.outputWidth()];
        for (int t = 0; t < tLen; t++) {
            for (int b = 0; b < batch; b++) {
                double[] f = yd[0][t][b];
                double[] r = yd[1][t][b];
                double[] o = out[t][b];
                for (int j = 0; j < hout; j++) {
                    switch (mode) {
                        case CONCAT -> {
                            o[j] = f[j];
                            o[hout + j] = r[j];
                        }
                        case SUM -> o[j] = f[j] + r[j];
                        case AVE -> o[j] = (f[j] + r[j]) / 2;
                        case MUL -> o[j] = f[j] * r[j];
                    }
                }
            }
        }
        return out;
    }

    /** Gradients of each direction's outputs from the gradient of the merged output. */
    private double[][][][] mergeBackward(double[][][] dOut, double[][][][] yd, int tLen, int batch) {
        int hout = config.outSize();
        if (!config.bidirectional()) return new double[][][][] {dOut};
        double[][][][] g = new double[2][tLen][batch][hout];
        for (int t = 0; t < tLen; t++) {
            for (int b = 0; b < batch; b++) {
                double[] o = dOut[t][b];
                for (int j = 0; j < hout; j++) {
                    switch (config.merge()) {
                        case CONCAT -> {
                            g[0][t][b][j] = o[j];
                            g[1][t][b][j] = o[hout + j];
                        }
                        case SUM -> {
                            g[0][t][b][j] = o[j];
                            g[1][t][b][j] = o[j];
                        }
                        case AVE -> {
                            g[0][t][b][j] = o[j] / 2;
                            g[1][t][b][j] = o[j] / 2;
                        }
                        case MUL -> {
                            g[0][t][b][j] = o[j] * yd[1][t][b][j];
                            g[1][t][b][j] = o[j] * yd[0][t][b][j];
                        }
                    }
                }
            }
        }
        return g;
    }

    /** Multiplies layer {@code k}'s merged output by its inter-layer dropout mask (also its own backward). */
    private void applyBetweenLayers(double[][][] v, int k, long seed) {
        int batch = v[0].length;
        int width = config.outputWidth();
        int stream = DropoutMask.stream(k, 0, DropoutMask.BETWEEN_LAYERS);
        for (int t = 0; t < v.length; t++)
            for (int b = 0; b < batch; b++)
                for (int j = 0; j < width; j++)
                    v[t][b][j] *= DropoutMask.value(seed, stream, (t * batch + b) * width + j, config.dropout());
    }

    /** m_x[b][j], one variational mask per sequence; all ones outside training. */
    private double[][] inputMask(int k, int d, int batch, int in, boolean training, long seed) {
        return variationalMask(DropoutMask.stream(k, d, DropoutMask.INPUT), batch, in,
                training ? config.inputDropout() : 0.0, seed);
    }

    /** m_h[b][j] over Hout; all ones outside training. */
    private double[][] recurrentMask(int k, int d, int batch, boolean training, long seed) {
        return variationalMask(DropoutMask.stream(k, d, DropoutMask.RECURRENT), batch, config.outSize(),
                training ? config.recurrentDropout() : 0.0, seed);
    }

    private static double[][] variationalMask(int stream, int batch, int width, double p, long seed) {
        double[][] m = new double[batch][width];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < width; j++) m[b][j] = DropoutMask.value(seed, stream, b * width + j, p);
        return m;
    }

    private static void zeroPadded(double[][][] v, int[] lengths) {
        for (int t = 0; t < v.length; t++)
            for (int b = 0; b < lengths.length; b++)
                if (t >= lengths[b]) java.util.Arrays.fill(v[t][b], 0.0);
    }

    private static double[] slice(double[] a, int off, int n) {
        double[] r = new double[n];
        System.arraycopy(a, off, r, 0, n);
        return r;
    }

    private static double[][][] toArray(Tensor x) {
        int a = x.dim(0), b = x.dim(1), c = x.dim(2);
        double[][][] r = new double[a][b][c];
        double[] d = x.data();
        for (int i = 0; i < a; i++)
            for (int j = 0; j < b; j++) System.arraycopy(d, (i * b + j) * c, r[i][j], 0, c);
        return r;
    }

    private static double[][][] copy3(double[][][] v) {
        double[][][] r = new double[v.length][][];
        for (int i = 0; i < v.length; i++) {
            r[i] = new double[v[i].length][];
            for (int j = 0; j < v[i].length; j++) r[i][j] = v[i][j].clone();
        }
        return r;
    }

    private static Tensor fromArray(double[][][] v, int a, int b, int c) {
        double[] d = new double[a * b * c];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < b; j++) System.arraycopy(v[i][j], 0, d, (i * b + j) * c, c);
        return Tensor.of(d, a, b, c);
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("ReferenceRnn: used after close()");
    }

    @Override
    public void close() {
        closed = true;
        params = null;
    }

    /**
     * Host arrays saved by a training forward: every step's {@link Step}, the directions' outputs for the
     * product merge, and the weights it ran with (shared, not copied, so not counted).
     */
    private static final class Trace implements RnnTrace {
        final ReferenceRnn owner;
        final DirectionParams[][] params;
        final int[] lengths;
        final int tLen;
        final int batch;
        final long seed;
        Step[][][][] steps;
        double[][][][][] dirOutputs;
        boolean closed;
        private final long bytes;

        Trace(ReferenceRnn owner, DirectionParams[][] params, int[] lengths, int tLen, int batch, long seed,
              Step[][][][] steps, double[][][][][] dirOutputs) {
            this.owner = owner;
            this.params = params;
            this.lengths = lengths;
            this.tLen = tLen;
            this.batch = batch;
            this.seed = seed;
            this.steps = steps;
            boolean any = false;
            for (double[][][][] o : dirOutputs) any |= o != null;
            this.dirOutputs = any ? dirOutputs : null;
            this.bytes = count();
        }

        private long count() {
            long n = 4L * lengths.length;
            for (Step[][][] layer : steps)
                for (Step[][] dir : layer)
                    for (Step[] row : dir)
                        for (Step s : row) if (s != null) n += s.bytes();
            if (dirOutputs != null) {
                for (double[][][][] layer : dirOutputs) {
                    if (layer == null) continue;
                    for (double[][][] dir : layer)
                        for (double[][] row : dir)
                            for (double[] v : row) n += 8L * v.length;
                }
            }
            return n;
        }

        @Override
        public long savedBytes() {
            return closed ? 0 : bytes;
        }

        @Override
        public void close() {
            closed = true;
            steps = null;
            dirOutputs = null;
        }
    }
}
