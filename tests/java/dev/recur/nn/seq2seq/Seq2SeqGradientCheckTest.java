package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.nn.layers.Parameters;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Finite-difference check of the full backward pass of tiny seq2seq models on the reference backend: every
 * parameter tensor, a few entries each, central differences of the mean cross-entropy.
 */
class Seq2SeqGradientCheckTest {
    static final int PAD = 0, BOS = 1, EOS = 2, V = 7;

    static Seq2SeqBatch batch() {
        return Seq2SeqBatch.of(
                List.of(new int[] {3, 4, 5, 6}, new int[] {6, 3}, new int[] {4, 4, 5}),
                List.of(new int[] {6, 5, 4}, new int[] {3}, new int[] {5, 4}),
                PAD, EOS);
    }

    static void check(Seq2SeqConfig cfg, double teacherForcing) {
        try (Backend be = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(cfg, be, 11)) {
            Parameters p = m.parameters();
            // Larger weights than the initialisation, so that saturation and attention peaks are exercised.
            SplittableRandom rnd = new SplittableRandom(5);
            for (String n : p.names()) {
                double[] d = p.value(n).data();
                for (int i = 0; i < d.length; i++) d[i] += rnd.nextDouble(-0.3, 0.3);
                if (n.endsWith("embedding.weight")) Arrays.fill(d, 0, cfg.embeddingSize(), 0.0);
            }
            p.markChanged();
            Seq2SeqBatch batch = batch();
            long seed = 3;
            p.zeroGrad();
            double loss = m.forwardBackward(batch, teacherForcing, seed).loss();
            assertTrue(loss > 0 && Double.isFinite(loss), "loss " + loss);
            double eps = 1e-6;
            int checked = 0;
            for (String n : p.names()) {
                Tensor w = p.value(n), g = p.grad(n);
                int[] idx = rnd.ints(3, 0, w.size()).toArray();
                for (int i : idx) {
                    double orig = w.data()[i];
                    w.data()[i] = orig + eps;
                    p.markChanged();
                    double lp = m.loss(batch, teacherForcing, seed).loss();
                    w.data()[i] = orig - eps;
                    p.markChanged();
                    double lm = m.loss(batch, teacherForcing, seed).loss();
                    w.data()[i] = orig;
                    p.markChanged();
                    double fd = (lp - lm) / (2 * eps);
                    double an = g.data()[i];
                    double tol = 1e-6 + 1e-5 * Math.abs(fd);
                    if (!(Math.abs(fd - an) <= tol)) {
                        throw new AssertionError("d loss / d " + n + " at flat index " + i + ": expected (finite difference) " + fd
                                + ", got (backward) " + an + " (|diff| " + Math.abs(fd - an) + " > " + tol + ")");
                    }
                    checked++;
                }
            }
            assertTrue(checked >= 3 * p.names().size(), "entries checked: " + checked);
            double[] pad = Arrays.copyOfRange(p.grad("source_embedding.weight").data(), 0, cfg.embeddingSize());
            assertTrue(Arrays.stream(pad).allMatch(x -> x == 0.0), "padding row of the source embedding has gradient " + Arrays.toString(pad));
        }
    }

    @Test
    void luongTeacherForcingLstmBidirectionalTwoLayersLinearTanhBridge() {
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(CellType.LSTM, 3, 2, true).decoder(CellType.LSTM, 4, 2)
                .attention(AttentionStyle.LUONG, AttentionScore.GENERAL).bridge(Bridge.LINEAR_TANH).combineSize(5)
                .tokens(PAD, BOS, EOS).build(), 1.0);
    }

    @Test
    void luongScheduledSamplingGruSumBridgeDotScores() {
        // Dot scores need the encoder output width (directions summed) equal to the decoder width.
        RnnConfig enc = RnnConfig.builder(CellType.GRU, 3, 4).bidirectional(true).merge(MergeMode.SUM).build();
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(enc).decoder(CellType.GRU, 4, 2)
                .attention(AttentionStyle.LUONG, AttentionScore.DOT).bridge(Bridge.SUM).combineSize(4)
                .tokens(PAD, BOS, EOS).build(), 0.5);
    }

    @Test
    void bahdanauTeacherForcingGruAdditive() {
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(CellType.GRU, 3, 2, true).decoder(CellType.GRU, 4, 2)
                .attention(AttentionStyle.BAHDANAU, AttentionScore.ADDITIVE).attentionSize(3).bridge(Bridge.LINEAR_TANH)
                .tokens(PAD, BOS, EOS).build(), 1.0);
    }

    @Test
    void bahdanauScheduledSamplingLstmSumBridgeGeneral() {
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(CellType.LSTM, 4, 1, false).decoder(CellType.LSTM, 4, 1)
                .attention(AttentionStyle.BAHDANAU, AttentionScore.GENERAL).bridge(Bridge.SUM)
                .tokens(PAD, BOS, EOS).build(), 0.5);
    }

    /** Projected bidirectional LSTM encoder (h width P, c width H), a decoder deeper than the encoder. */
    @Test
    void luongProjectedEncoderDeeperDecoder() {
        RnnConfig enc = RnnConfig.builder(CellType.LSTM, 3, 5).projSize(3).bidirectional(true).build();
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(enc).decoder(CellType.LSTM, 4, 3)
                .attention(AttentionStyle.LUONG, AttentionScore.GENERAL)
                .tokens(PAD, BOS, EOS).build(), 1.0);
    }

    /** Dropout everywhere (seeded, so the loss is a deterministic function of the weights). */
    @Test
    void bahdanauWithDropoutInEncoderAndDecoder() {
        RnnConfig enc = RnnConfig.builder(CellType.LSTM, 3, 4).layers(2).bidirectional(true).dropout(0.3).inputDropout(0.2).build();
        RnnConfig dec = RnnConfig.builder(CellType.GRU, 3 + 8, 4).layers(2).recurrentDropout(0.25).dropout(0.2).build();
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(enc).decoder(dec)
                .attention(AttentionStyle.BAHDANAU, AttentionScore.ADDITIVE).attentionSize(3)
                .tokens(PAD, BOS, EOS).build(), 0.7);
    }

    @Test
    void noAttentionZeroBridgeRnnTanh() {
        check(Seq2SeqConfig.builder(V, V).embedding(3).encoder(CellType.RNN_TANH, 3, 1, false).decoder(CellType.RNN_TANH, 4, 1)
                .attention(AttentionStyle.NONE, null).bridge(Bridge.ZERO).tokens(PAD, BOS, EOS).build(), 1.0);
    }

    /**
     * Luong with teacher forcing runs the decoder over all steps in one call; with a teacher-forcing probability
     * just below 1 (every coin still picks the true token here) it runs the per-step loop. Same loss and gradients.
     */
    @Test
    void luongOneCallAndPerStepLoopAgree() {
        Seq2SeqConfig cfg = Seq2SeqConfig.builder(V, V).embedding(3).encoder(CellType.LSTM, 3, 2, true).decoder(CellType.LSTM, 4, 2)
                .attention(AttentionStyle.LUONG, AttentionScore.GENERAL).tokens(PAD, BOS, EOS).build();
        try (Backend be = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(cfg, be, 11)) {
            Parameters p = m.parameters();
            p.zeroGrad();
            double one = m.forwardBackward(batch(), 1.0, 3).loss();
            java.util.Map<String, Tensor> g1 = new java.util.LinkedHashMap<>();
            p.grads().forEach((k, v) -> g1.put(k, v.copy()));
            p.zeroGrad();
            double loop = m.forwardBackward(batch(), 1 - 1e-12, 3).loss();
            if (Math.abs(one - loop) > 1e-13) throw new AssertionError("loss: one call " + one + ", per-step loop " + loop);
            for (String n : p.names()) {
                double[] a = g1.get(n).data(), b = p.grad(n).data();
                for (int i = 0; i < a.length; i++) {
                    if (Math.abs(a[i] - b[i]) > 1e-13) {
                        throw new AssertionError("gradient of " + n + " at flat index " + i + ": one call " + a[i] + ", per-step loop " + b[i]);
                    }
                }
            }
        }
    }
}
