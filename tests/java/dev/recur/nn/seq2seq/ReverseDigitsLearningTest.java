package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Learning: a small seq2seq model with Luong attention learns to reverse digit strings of length 3 to 7,
 * reaching at least 95% exact match (greedy decoding) on held-out strings never seen in training, in a fixed
 * number of steps with a fixed seed, on the reference backend.
 */
class ReverseDigitsLearningTest {
    static final int PAD = 0, BOS = 1, EOS = 2, V = 13;
    static final int STEPS = Integer.getInteger("recur.reverse.steps", 600);

    static int[] randomDigits(SplittableRandom rnd) {
        int[] s = new int[rnd.nextInt(3, 8)];
        for (int i = 0; i < s.length; i++) s[i] = 3 + rnd.nextInt(10);
        return s;
    }

    static int[] reversed(int[] s) {
        int[] r = new int[s.length];
        for (int i = 0; i < s.length; i++) r[i] = s[s.length - 1 - i];
        return r;
    }

    @Test
    void learnsToReverseDigitStrings() {
        SplittableRandom data = new SplittableRandom(2024);
        List<int[]> heldOut = new ArrayList<>();
        Set<String> heldOutKeys = new HashSet<>();
        while (heldOut.size() < 300) {
            int[] s = randomDigits(data);
            if (heldOutKeys.add(Arrays.toString(s))) heldOut.add(s);
        }
        Seq2SeqConfig cfg = Seq2SeqConfig.builder(V, V).embedding(16).encoder(CellType.GRU, 16, 1, true).decoder(CellType.GRU, 32, 1)
                .attention(AttentionStyle.LUONG, AttentionScore.DOT).bridge(Bridge.LINEAR_TANH).tokens(PAD, BOS, EOS).build();
        long t0 = System.nanoTime();
        try (Backend be = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(cfg, be, 7)) {
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1.0), 5.0, 0);
            double loss = 0;
            for (int step = 0; step < STEPS; step++) {
                List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
                while (src.size() < 32) {
                    int[] s = randomDigits(data);
                    if (heldOutKeys.contains(Arrays.toString(s))) continue;
                    src.add(s);
                    tgt.add(reversed(s));
                }
                // A step decay for the last 40% of training settles the weights after Adam's noisy phase.
                if (step == STEPS * 6 / 10) trainer.optimizer().setLearningRate(0.002);
                loss = trainer.step(Seq2SeqBatch.of(src, tgt, PAD, EOS)).loss();
            }
            List<int[]> expected = heldOut.stream().map(ReverseDigitsLearningTest::reversed).toList();
            double acc = Seq2SeqTrainer.exactMatch(m, heldOut, expected, 12, 100);
            System.out.printf("reverse digits: %d steps, final loss %.4f, held-out exact match %.3f, %.1f s%n", STEPS, loss, acc,
                    (System.nanoTime() - t0) / 1e9);
            assertTrue(acc >= 0.95, "held-out exact-match accuracy after " + STEPS + " steps: expected >= 0.95, got " + acc);
        }
    }
}
