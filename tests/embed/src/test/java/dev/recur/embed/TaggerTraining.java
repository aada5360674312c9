package dev.recur.embed;

import dev.recur.backend.Backend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.SequenceTagger;
import dev.recur.nn.layers.SequenceTaggerTrainer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

import java.util.SplittableRandom;

/**
 * A small LSTM tagger, trained as a trainer that embeds recur would: token ids in (as one-hot features, which the
 * LSTM's input weights embed), an LSTM, a tag per position, trained by {@link SequenceTaggerTrainer} (on a device
 * backend every step runs on the device: the batch goes up, the loss comes back). The tag of a position is
 * (token + previous token) mod 3, so it needs the recurrence.
 */
final class TaggerTraining {
    static final int VOCAB = 8, TAGS = 3, T = 12, B = 16;

    private TaggerTraining() {}

    /** The loss of each training step, in order. */
    static double[] lossCurve(Backend backend, int steps) {
        Parameters params = new Parameters();
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, VOCAB, 24).build();
        SplittableRandom rnd = new SplittableRandom(7);
        double[] losses = new double[steps];
        try (SequenceTagger tagger = new SequenceTagger(params, "tagger", cfg, TAGS, backend, 2);
             SequenceTaggerTrainer trainer = tagger.trainer(OptimizerConfig.adam(0.03))) {
            for (int step = 0; step < steps; step++) {
                int[] ids = new int[T * B], tags = new int[T * B];
                for (int t = 0; t < T; t++) {
                    for (int b = 0; b < B; b++) {
                        int i = t * B + b;
                        ids[i] = rnd.nextInt(VOCAB);
                        tags[i] = (ids[i] + (t == 0 ? 0 : ids[i - B])) % TAGS;
                    }
                }
                Tensor x = Tensor.zeros(T, B, VOCAB);
                for (int i = 0; i < T * B; i++) x.data()[i * VOCAB + ids[i]] = 1;
                losses[step] = trainer.step(x, null, tags, step);
            }
        }
        return losses;
    }

    /** Mean of {@code losses[from, to)}. */
    static double mean(double[] losses, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) s += losses[i];
        return s / (to - from);
    }
}
