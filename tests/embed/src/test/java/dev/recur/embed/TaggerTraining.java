package dev.recur.embed;

import dev.recur.backend.Backend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.nn.layers.Embedding;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.SequenceTagger;
import dev.recur.nn.layers.SoftmaxCrossEntropy;
import dev.recur.nn.train.Adam;
import dev.recur.tensor.Tensor;

import java.util.SplittableRandom;

/**
 * A small LSTM tagger, trained as a trainer that embeds recur would: token ids in, an embedding, an LSTM, a tag
 * per position. The tag of a position is (token + previous token) mod 3, so it needs the recurrence.
 */
final class TaggerTraining {
    static final int VOCAB = 8, TAGS = 3, T = 12, B = 16;

    private TaggerTraining() {}

    /** The loss of each training step, in order. */
    static double[] lossCurve(Backend backend, int steps) {
        Parameters params = new Parameters();
        Embedding embedding = new Embedding(params, "emb", VOCAB, 8, -1, 1);
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 8, 24).build();
        Adam adam = new Adam(0.03);
        SplittableRandom rnd = new SplittableRandom(7);
        double[] losses = new double[steps];
        try (SequenceTagger tagger = new SequenceTagger(params, "tagger", cfg, TAGS, backend, 2)) {
            for (int step = 0; step < steps; step++) {
                int[] ids = new int[T * B], tags = new int[T * B], lengths = new int[B];
                for (int b = 0; b < B; b++) lengths[b] = T;
                for (int t = 0; t < T; t++) {
                    for (int b = 0; b < B; b++) {
                        int i = t * B + b;
                        ids[i] = rnd.nextInt(VOCAB);
                        tags[i] = (ids[i] + (t == 0 ? 0 : ids[i - B])) % TAGS;
                    }
                }
                params.zeroGrad();
                Tensor x = embedding.forward(ids, T, B);
                try (SequenceTagger.Pass pass = tagger.forward(x, lengths, step)) {
                    SoftmaxCrossEntropy.Result r = SoftmaxCrossEntropy.compute(pass.logits(), tags, -1);
                    losses[step] = r.loss();
                    embedding.backward(ids, tagger.backward(pass, r.dlogits()));
                }
                adam.step(params);
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
