package dev.recur.nn.layers;

import dev.recur.backend.Backend;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.nn.RnnInput;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

import java.util.Arrays;

/**
 * Many-to-one head: a recurrent network over {@code x [T, B, I]}, a {@link Pooling} of its outputs to one
 * vector per sequence, and a {@link Linear} to {@code classes} logits {@code [B, C]}. Parameters:
 * {@code <prefix>.rnn.*} and {@code <prefix>.out.*}. With {@link SoftmaxCrossEntropy} it classifies; with one
 * output and {@link MeanSquaredError} it regresses (e.g. forecasting the next value of a series).
 * {@link #trainer} trains it with an {@link OptimizerConfig} (SGD, Adam or AdamW, clipping, parameter groups), on a
 * device backend entirely on the device.
 */
public final class SequenceClassifier implements AutoCloseable {
    private final Parameters params;
    private final RecurrentLayer rnn;
    private final Linear out;
    private final Pooling pooling;
    private final int width;
    private SequenceClassifierTrainer trainer;

    public SequenceClassifier(Parameters params, String prefix, RnnConfig config, int classes, Pooling pooling,
                              Backend backend, long seed) {
        if (pooling == null) throw new IllegalArgumentException("pooling: must not be null");
        this.params = params;
        this.pooling = pooling;
        this.rnn = new RecurrentLayer(params, prefix + ".rnn", config, backend, seed);
        this.width = pooling == Pooling.LAST ? config.directions() * config.outSize() : config.outputWidth();
        try {
            this.out = new Linear(params, prefix + ".out", width, classes, true, seed + 1);
        } catch (RuntimeException | Error e) {
            rnn.close();
            throw e;
        }
    }

    /** A forward pass kept for {@link #backward}; close it to release the saved activations. */
    public static final class Pass implements AutoCloseable {
        private final RnnOutput rnnOut;
        private final Tensor pooled;
        private final Tensor logits;
        private final int[] lengths;
        private final int[] argmax;

        private Pass(RnnOutput rnnOut, Tensor pooled, Tensor logits, int[] lengths, int[] argmax) {
            this.rnnOut = rnnOut;
            this.pooled = pooled;
            this.logits = logits;
            this.lengths = lengths;
            this.argmax = argmax;
        }

        /** {@code [B, C]}. */
        public Tensor logits() {
            return logits;
        }

        /** {@code [B, width]}: the pooled representation fed to the output layer. */
        public Tensor pooled() {
            return pooled;
        }

        @Override
        public void close() {
            rnnOut.close();
        }
    }

    /**
     * A trainer for this classifier (the optimizer, clipping and parameter groups of {@code config}): on a device
     * backend every step runs on the device and moves only the batch in and the loss out ({@link
     * SequenceClassifierTrainer}); on the reference backend it steps on the host. One at a time: close it before
     * asking for another.
     */
    public SequenceClassifierTrainer trainer(OptimizerConfig config) {
        if (trainer != null) throw new IllegalStateException("trainer: this classifier already has an open trainer; close it first");
        SequenceClassifierTrainer t = new SequenceClassifierTrainer(this, config);
        trainer = t;
        return t;
    }

    void trainerClosed(SequenceClassifierTrainer t) {
        if (trainer == t) trainer = null;
    }

    /** A device trainer's parameters into the host mirror before a host computation reads them. */
    private void pullFromTrainer() {
        if (trainer != null) trainer.pullIfChanged();
    }

    Parameters params() {
        return params;
    }

    RecurrentLayer rnnLayer() {
        return rnn;
    }

    Linear outputLayer() {
        return out;
    }

    public Pooling pooling() {
        return pooling;
    }

    /** Outputs per sequence (classes, or regression outputs). */
    public int classes() {
        return out.outFeatures();
    }

    /** Inference: logits {@code [B, C]}. */
    public Tensor predict(Tensor x, int[] lengths) {
        pullFromTrainer();
        try (RnnOutput o = rnn.forward(new RnnInput(x, null, null, lengths))) {
            int[] len = lengthsOr(lengths, x);
            return out.forward(pool(o, len, new int[o.y().dim(1) * o.y().dim(2)]));
        }
    }

    /** Training forward (dropout from {@code seed}). */
    public Pass forward(Tensor x, int[] lengths, long seed) {
        pullFromTrainer();
        RnnOutput o = rnn.forwardTraining(new RnnInput(x, null, null, lengths), seed);
        try {
            int[] len = lengthsOr(lengths, x);
            int[] am = new int[o.y().dim(1) * o.y().dim(2)];
            Tensor pooled = pool(o, len, am);
            return new Pass(o, pooled, out.forward(pooled), len, am);
        } catch (RuntimeException e) {
            o.close();
            throw e;
        }
    }

    /** Backward of {@code sum(logits * dlogits)}: accumulates parameter gradients, returns {@code dx [T, B, I]}. */
    public Tensor backward(Pass pass, Tensor dlogits) {
        Tensor dpooled = out.backward(pass.pooled, dlogits);
        Tensor y = pass.rnnOut.y();
        int t = y.dim(0), b = y.dim(1), w = y.dim(2);
        RnnConfig c = rnn.config();
        Tensor dy = Tensor.zeros(t, b, w);
        Tensor dhN = null;
        double[] dp = dpooled.data();
        switch (pooling) {
            case LAST -> {
                int d = c.directions(), h = c.outSize();
                dhN = Tensor.zeros(c.numLayers() * d, b, h);
                for (int dir = 0; dir < d; dir++) {
                    int layer = (c.numLayers() - 1) * d + dir;
                    for (int bi = 0; bi < b; bi++) {
                        System.arraycopy(dp, bi * width + dir * h, dhN.data(), (layer * b + bi) * h, h);
                    }
                }
            }
            case MEAN -> {
                for (int bi = 0; bi < b; bi++) {
                    for (int s = 0; s < pass.lengths[bi]; s++) {
                        for (int j = 0; j < w; j++) dy.data()[(s * b + bi) * w + j] = dp[bi * w + j] / pass.lengths[bi];
                    }
                }
            }
            case MAX -> {
                for (int bi = 0; bi < b; bi++) {
                    for (int j = 0; j < w; j++) dy.data()[(pass.argmax[bi * w + j] * b + bi) * w + j] = dp[bi * w + j];
                }
            }
        }
        RnnGradients g = rnn.backward(pass.rnnOut, dy, dhN, null);
        return g.dx();
    }

    private static int[] lengthsOr(int[] lengths, Tensor x) {
        if (lengths != null) return lengths;
        int[] all = new int[x.dim(1)];
        Arrays.fill(all, x.dim(0));
        return all;
    }

    private Tensor pool(RnnOutput o, int[] lengths, int[] argmax) {
        Tensor y = o.y();
        int b = y.dim(1), w = y.dim(2);
        RnnConfig c = rnn.config();
        double[] yd = y.data();
        if (pooling == Pooling.LAST) {
            int d = c.directions(), h = c.outSize();
            Tensor p = Tensor.zeros(b, width);
            for (int dir = 0; dir < d; dir++) {
                int layer = (c.numLayers() - 1) * d + dir;
                for (int bi = 0; bi < b; bi++) System.arraycopy(o.hN().data(), (layer * b + bi) * h, p.data(), bi * width + dir * h, h);
            }
            return p;
        }
        Tensor p = Tensor.zeros(b, w);
        double[] pd = p.data();
        for (int bi = 0; bi < b; bi++) {
            for (int j = 0; j < w; j++) {
                if (pooling == Pooling.MEAN) {
                    double s = 0;
                    for (int t = 0; t < lengths[bi]; t++) s += yd[(t * b + bi) * w + j];
                    pd[bi * w + j] = s / lengths[bi];
                } else {
                    int best = 0;
                    for (int t = 1; t < lengths[bi]; t++) if (yd[(t * b + bi) * w + j] > yd[(best * b + bi) * w + j]) best = t;
                    argmax[bi * w + j] = best;
                    pd[bi * w + j] = yd[(best * b + bi) * w + j];
                }
            }
        }
        return p;
    }

    /** Closes an open trainer (its parameters come back to the host mirror), then frees the network. */
    @Override
    public void close() {
        try {
            if (trainer != null) trainer.close();
        } finally {
            rnn.close();
        }
    }
}
