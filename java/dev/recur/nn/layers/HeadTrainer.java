package dev.recur.nn.layers;

import dev.recur.nn.train.OptimizerConfig;

/**
 * What the trainers of the model heads share ({@link SequenceClassifierTrainer}, {@link SequenceTaggerTrainer}): their
 * optimizer configuration, where they step, how many steps they took, and the parameters with the head's values
 * current. Each subclass adds its own {@code step}.
 */
public abstract sealed class HeadTrainer implements AutoCloseable permits SequenceClassifierTrainer, SequenceTaggerTrainer {
    final HeadTraining core;

    HeadTrainer(HeadTraining core) {
        this.core = core;
    }

    public OptimizerConfig config() {
        return core.config;
    }

    /** Whether steps run on a device (false on the float64 reference, which steps on the host). */
    public boolean onDevice() {
        return core.device != null;
    }

    /** Steps taken. */
    public long steps() {
        return core.steps();
    }

    /** The parameters the head was made with, its values current (downloaded first if a step changed them). */
    public Parameters parameters() {
        core.pullIfChanged();
        return core.params;
    }

    void pullIfChanged() {
        core.pullIfChanged();
    }

    /** Downloads the parameters into the host mirror (if a step changed them) and frees the device buffers. */
    @Override
    public void close() {
        try {
            core.close();
        } finally {
            closed();
        }
    }

    /** Tells the head its trainer is gone. */
    abstract void closed();
}
