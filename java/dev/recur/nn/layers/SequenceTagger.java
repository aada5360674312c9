package dev.recur.nn.layers;

import dev.recur.backend.Backend;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnOutput;
import dev.recur.nn.RnnInput;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

/**
 * Many-to-many aligned head (tagging): a recurrent network over {@code x [T, B, I]} and a {@link Linear} on
 * every step's output, giving logits {@code [T, B, C]}. Padded steps get the output layer's bias only; mask
 * them in the loss with a padding target. Parameters: {@code <prefix>.rnn.*} and {@code <prefix>.out.*}.
 * {@link #trainer} trains it with an {@link OptimizerConfig} (SGD, Adam or AdamW, clipping, parameter groups), on a
 * device backend entirely on the device.
 */
public final class SequenceTagger implements AutoCloseable {
    private final Parameters params;
    private final RecurrentLayer rnn;
    private final Linear out;
    private SequenceTaggerTrainer trainer;

    public SequenceTagger(Parameters params, String prefix, RnnConfig config, int classes, Backend backend, long seed) {
        this.params = params;
        this.rnn = new RecurrentLayer(params, prefix + ".rnn", config, backend, seed);
        try {
            this.out = new Linear(params, prefix + ".out", config.outputWidth(), classes, true, seed + 1);
        } catch (RuntimeException | Error e) {
            rnn.close();
            throw e;
        }
    }

    /** A forward pass kept for {@link #backward}; close it to release the saved activations. */
    public static final class Pass implements AutoCloseable {
        private final RnnOutput rnnOut;
        private final Tensor logits;

        private Pass(RnnOutput rnnOut, Tensor logits) {
            this.rnnOut = rnnOut;
            this.logits = logits;
        }

        /** {@code [T, B, C]}. */
        public Tensor logits() {
            return logits;
        }

        @Override
        public void close() {
            rnnOut.close();
        }
    }

    /**
     * A trainer for this tagger (the optimizer, clipping and parameter groups of {@code config}): on a device backend
     * every step runs on the device and moves only the batch in and the loss out ({@link SequenceTaggerTrainer}); on
     * the reference backend it steps on the host. One at a time: close it before asking for another.
     */
    public SequenceTaggerTrainer trainer(OptimizerConfig config) {
        if (trainer != null) throw new IllegalStateException("trainer: this tagger already has an open trainer; close it first");
        SequenceTaggerTrainer t = new SequenceTaggerTrainer(this, config);
        trainer = t;
        return t;
    }

    void trainerClosed(SequenceTaggerTrainer t) {
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

    /** Tags per step. */
    public int classes() {
        return out.outFeatures();
    }

    /** Inference: logits {@code [T, B, C]}. */
    public Tensor predict(Tensor x, int[] lengths) {
        pullFromTrainer();
        try (RnnOutput o = rnn.forward(new RnnInput(x, null, null, lengths))) {
            return out.forward(o.y());
        }
    }

    /** Training forward (dropout from {@code seed}). */
    public Pass forward(Tensor x, int[] lengths, long seed) {
        pullFromTrainer();
        RnnOutput o = rnn.forwardTraining(new RnnInput(x, null, null, lengths), seed);
        try {
            return new Pass(o, out.forward(o.y()));
        } catch (RuntimeException e) {
            o.close();
            throw e;
        }
    }

    /** Backward of {@code sum(logits * dlogits)}: accumulates parameter gradients, returns {@code dx [T, B, I]}. */
    public Tensor backward(Pass pass, Tensor dlogits) {
        Tensor dy = out.backward(pass.rnnOut.y(), dlogits);
        return rnn.backward(pass.rnnOut, dy, null, null).dx();
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
