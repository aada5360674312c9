package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.nn.decode.BeamSearch;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.Sampler;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.train.Adam;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Decoding a real (random-weight) seq2seq model: consistency between decoders, batching and the training loss. */
class Seq2SeqDecodingTest {
    static final int PAD = 0, BOS = 1, EOS = 2, V = 9;
    static final List<int[]> SOURCES = List.of(new int[] {3, 4, 5, 6, 7}, new int[] {8}, new int[] {5, 5, 3}, new int[] {7, 6});

    static Seq2SeqConfig config(AttentionStyle style) {
        return Seq2SeqConfig.builder(V, V).embedding(6).encoder(CellType.LSTM, 5, 2, true).decoder(CellType.LSTM, 7, 2)
                .attention(style, style == AttentionStyle.BAHDANAU ? AttentionScore.ADDITIVE : AttentionScore.GENERAL)
                .tokens(PAD, BOS, EOS).build();
    }

    private static final Map<AttentionStyle, Map<String, Tensor>> TRAINED = new EnumMap<>(AttentionStyle.class);

    /**
     * A model trained briefly (60 steps) to reverse strings: good enough that its outputs vary in content and
     * length, poor enough that greedy and beam search differ.
     */
    static Seq2Seq model(Backend be, AttentionStyle style) {
        Seq2Seq m = Seq2Seq.create(config(style), be, 21);
        Map<String, Tensor> trained = TRAINED.get(style);
        if (trained != null) {
            m.parameters().copyFrom(trained);
            return m;
        }
        Parameters p = m.parameters();
        Adam adam = new Adam(0.02);
        SplittableRandom rnd = new SplittableRandom(4);
        for (int step = 0; step < 60; step++) {
            List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                int[] s = rnd.ints(rnd.nextInt(1, 6), 3, V).toArray();
                int[] r = new int[s.length];
                for (int j = 0; j < s.length; j++) r[j] = s[s.length - 1 - j];
                src.add(s);
                tgt.add(r);
            }
            p.zeroGrad();
            m.forwardBackward(Seq2SeqBatch.of(src, tgt, PAD, EOS), 1.0, step);
            adam.step(p);
        }
        TRAINED.put(style, p.snapshot());
        return m;
    }

    @Test
    void beamWidthOneEqualsGreedyAndBeamScoresMatchTheTrainingLoss() {
        for (AttentionStyle style : new AttentionStyle[] {AttentionStyle.LUONG, AttentionStyle.BAHDANAU}) {
            try (Backend be = new ReferenceBackend(); Seq2Seq m = model(be, style)) {
                Decoded g = m.greedy(SOURCES, 8);
                Decoded b1 = m.beamSearch(SOURCES, new BeamSearch(1, 0, 8));
                Decoded b4 = m.beamSearch(SOURCES, new BeamSearch(4, 0, 8));
                for (int i = 0; i < SOURCES.size(); i++) {
                    assertArrayEquals(g.tokens().get(i), b1.tokens().get(i), style + " item " + i + ": beam width 1 vs greedy tokens");
                    assertEquals(g.logProb()[i], b1.logProb()[i], 1e-12, style + " item " + i + ": beam width 1 vs greedy log-prob");
                    if (g.finished()[i] && b4.finished()[i]) {
                        assertTrue(b4.logProb()[i] >= g.logProb()[i] - 1e-12, style + " item " + i + ": width 4 worse than greedy");
                    }
                    // The decoder's step-by-step log-probability of a finished hypothesis equals minus the summed
                    // teacher-forced cross-entropy of the same target: the inference and training paths agree.
                    for (Decoded d : new Decoded[] {g, b4}) {
                        if (!d.finished()[i]) continue;
                        Seq2SeqBatch one = Seq2SeqBatch.of(List.of(SOURCES.get(i)), List.of(d.tokens().get(i)), PAD, EOS);
                        Seq2Seq.Loss l = m.loss(one, 1.0, 0);
                        assertEquals(-d.logProb()[i], l.loss() * l.tokens(), 1e-9, style + " item " + i + ": -logProb vs summed loss");
                    }
                }
            }
        }
    }

    @Test
    void batchedDecodingEqualsDecodingEachItemAloneAndReportsMaskedAttention() {
        for (AttentionStyle style : new AttentionStyle[] {AttentionStyle.LUONG, AttentionStyle.BAHDANAU}) {
            try (Backend be = new ReferenceBackend(); Seq2Seq m = model(be, style)) {
                Decoded all = m.beamSearch(SOURCES, new BeamSearch(3, 1.0, 8));
                for (int i = 0; i < SOURCES.size(); i++) {
                    Decoded alone = m.beamSearch(List.of(SOURCES.get(i)), new BeamSearch(3, 1.0, 8));
                    assertArrayEquals(alone.tokens().get(0), all.tokens().get(i), style + " item " + i + ": batched vs alone");
                    assertEquals(alone.score()[0], all.score()[i], 1e-12, style + " item " + i + ": score batched vs alone");
                    double[][] att = all.attention().get(i);
                    int steps = all.tokens().get(i).length + (all.finished()[i] ? 1 : 0);
                    assertEquals(steps, att.length, style + " item " + i + ": attention rows (one per generated token)");
                    int len = SOURCES.get(i).length;
                    for (int u = 0; u < att.length; u++) {
                        double s = 0;
                        for (int t = 0; t < att[u].length; t++) {
                            if (t >= len) assertEquals(0.0, att[u][t], 0.0, style + " item " + i + " step " + u + ": weight beyond the source at " + t);
                            s += att[u][t];
                        }
                        assertEquals(1.0, s, 1e-12, style + " item " + i + " step " + u + ": attention weights sum");
                    }
                }
                Decoded s1 = new Sampler(0.8, 5).decode(m.stepModel(SOURCES), BOS, EOS, 8);
                Decoded s2 = new Sampler(0.8, 5).decode(m.stepModel(SOURCES), BOS, EOS, 8);
                for (int i = 0; i < SOURCES.size(); i++) assertArrayEquals(s1.tokens().get(i), s2.tokens().get(i), "seeded sampling item " + i);
            }
        }
    }

    @Test
    void invalidConfigurationsAreRefusedNamingTheOption() {
        var e = assertThrows(IllegalArgumentException.class, () -> Seq2SeqConfig.builder(V, V).encoder(CellType.GRU, 8, 1, true)
                .decoder(CellType.GRU, 8, 1).attention(AttentionStyle.LUONG, AttentionScore.DOT).build());
        assertTrue(e.getMessage().startsWith("decoderSize: dot scores need decoderSize == encoderSize (16), got 8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Seq2SeqConfig.builder(V, V).encoder(CellType.GRU, 8, 1, false)
                .decoder(CellType.GRU, 6, 1).bridge(Bridge.SUM).build());
        assertTrue(e.getMessage().startsWith("bridge: SUM needs"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Seq2SeqConfig.builder(V, V).tokens(0, 0, 2).build());
        assertTrue(e.getMessage().startsWith("bosId/eosId: must differ from padId"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Seq2SeqBatch.of(List.of(new int[0]), List.of(new int[] {3}), PAD, EOS));
        assertTrue(e.getMessage().startsWith("sources: sequence 0 is empty"), e.getMessage());
        try (Backend be = new ReferenceBackend(); Seq2Seq m = model(be, AttentionStyle.LUONG)) {
            Seq2SeqBatch b = Seq2SeqBatch.of(List.of(new int[] {3}), List.of(new int[] {4}), PAD, EOS);
            e = assertThrows(IllegalArgumentException.class, () -> m.forwardBackward(b, 1.5, 0));
            assertTrue(e.getMessage().startsWith("teacherForcing: expected a probability in [0, 1], got 1.5"), e.getMessage());
            Seq2SeqBatch bad = Seq2SeqBatch.of(List.of(new int[] {3, V}), List.of(new int[] {4}), PAD, EOS);
            e = assertThrows(IllegalArgumentException.class, () -> m.forwardBackward(bad, 1.0, 0));
            assertTrue(e.getMessage().startsWith("batch.source: entry 1 must be in [0, 9), got 9"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.greedy(List.of(new int[] {-1}), 5));
            assertTrue(e.getMessage().startsWith("sources: entry 0 must be in [0, 9), got -1"), e.getMessage());
        }
    }

    @Test
    void checkpointRoundTripRestoresTheSameDecoding(@TempDir Path dir) throws Exception {
        try (Backend be = new ReferenceBackend(); Seq2Seq m = model(be, AttentionStyle.BAHDANAU)) {
            Decoded before = m.beamSearch(SOURCES, new BeamSearch(3, 0.6, 8));
            Path f = dir.resolve("s2s.safetensors");
            m.save(f);
            try (Seq2Seq fresh = Seq2Seq.create(config(AttentionStyle.BAHDANAU), be, 999)) {
                fresh.load(f);
                for (String n : m.parameters().names()) {
                    assertArrayEquals(m.parameters().value(n).data(), fresh.parameters().value(n).data(), 0.0, "parameter " + n + " after load");
                }
                Decoded after = fresh.beamSearch(SOURCES, new BeamSearch(3, 0.6, 8));
                for (int i = 0; i < SOURCES.size(); i++) {
                    assertArrayEquals(before.tokens().get(i), after.tokens().get(i), "item " + i + " tokens after reload");
                    assertEquals(before.score()[i], after.score()[i], 0.0, "item " + i + " score after reload");
                }
            }
            try (Seq2Seq opened = Seq2Seq.open(f, be)) {
                assertEquals(m.config(), opened.config(), "configuration rebuilt from the checkpoint's metadata");
                Decoded after = opened.beamSearch(SOURCES, new BeamSearch(3, 0.6, 8));
                for (int i = 0; i < SOURCES.size(); i++) {
                    assertArrayEquals(before.tokens().get(i), after.tokens().get(i), "item " + i + " tokens after open");
                }
            }
            try (Seq2Seq other = Seq2Seq.create(config(AttentionStyle.LUONG), be, 1)) {
                var e = assertThrows(IllegalArgumentException.class, () -> other.load(f));
                assertTrue(e.getMessage().startsWith("source:"), e.getMessage());
            }
        }
    }
}
