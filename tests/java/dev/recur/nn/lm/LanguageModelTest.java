package dev.recur.nn.lm;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.io.SafeTensors;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.Greedy;
import dev.recur.nn.decode.Sampler;
import dev.recur.nn.layers.Parameters;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LanguageModelTest {
    static final int V = 8, PAD = 0;

    static LanguageModel model(Backend be, CellType cell) {
        RnnConfig rnn = RnnConfig.builder(cell, 4, 6).layers(2).projSize(cell == CellType.LSTM ? 5 : 0).build();
        LanguageModel m = LanguageModel.create(V, 4, rnn, PAD, be, 3);
        SplittableRandom rnd = new SplittableRandom(2);
        for (String n : m.parameters().names()) {
            double[] d = m.parameters().value(n).data();
            for (int i = 0; i < d.length; i++) d[i] += rnd.nextDouble(-0.4, 0.4);
            if (n.equals("embedding.weight")) Arrays.fill(d, 0, 4, 0.0);
        }
        // The padding id is never a sensible prediction; keep generation off it so every generated token counts.
        m.parameters().value("output.bias").data()[PAD] = -30;
        m.parameters().markChanged();
        return m;
    }

    static int[] ids(SplittableRandom rnd, int n) {
        return rnd.ints(n, 1, V).toArray();
    }

    @Test
    void backwardMatchesFiniteDifferencesWithACarriedState() {
        for (CellType cell : new CellType[] {CellType.LSTM, CellType.GRU}) {
            try (Backend be = new ReferenceBackend(); LanguageModel m = model(be, cell)) {
                SplittableRandom rnd = new SplittableRandom(6);
                int t = 4, b = 3;
                int[] in = ids(rnd, t * b), tg = ids(rnd, t * b);
                tg[5] = PAD;
                int hout = m.rnnConfig().outSize();
                Tensor h0 = Tensor.zeros(2, b, hout), c0 = cell == CellType.LSTM ? Tensor.zeros(2, b, 6) : null;
                for (int i = 0; i < h0.size(); i++) h0.data()[i] = rnd.nextDouble(-0.5, 0.5);
                if (c0 != null) for (int i = 0; i < c0.size(); i++) c0.data()[i] = rnd.nextDouble(-0.5, 0.5);
                Parameters p = m.parameters();
                p.zeroGrad();
                LanguageModel.Loss l = m.forwardBackward(in, tg, t, b, h0, c0, 0);
                assertEquals(t * b - 1, l.tokens(), cell + ": counted targets (one padded)");
                double eps = 1e-6;
                for (String n : p.names()) {
                    Tensor w = p.value(n);
                    for (int k = 0; k < 4; k++) {
                        int i = rnd.nextInt(w.size());
                        double o = w.data()[i];
                        w.data()[i] = o + eps;
                        p.markChanged();
                        double lp = m.loss(in, tg, t, b, h0, c0, 0).loss();
                        w.data()[i] = o - eps;
                        p.markChanged();
                        double lm = m.loss(in, tg, t, b, h0, c0, 0).loss();
                        w.data()[i] = o;
                        p.markChanged();
                        double fd = (lp - lm) / (2 * eps), an = p.grad(n).data()[i];
                        double tol = 1e-7 + 1e-5 * Math.abs(fd);
                        if (!(Math.abs(fd - an) <= tol)) {
                            throw new AssertionError(cell + ": d loss / d " + n + " at flat index " + i + ": expected (finite difference) "
                                    + fd + ", got (backward) " + an);
                        }
                    }
                }
            }
        }
    }

    @Test
    void carryingTheStateAcrossBatchesEqualsOneLongBatch() {
        try (Backend be = new ReferenceBackend(); LanguageModel m = model(be, CellType.LSTM)) {
            SplittableRandom rnd = new SplittableRandom(8);
            int t = 6, b = 2;
            int[] in = ids(rnd, 2 * t * b), tg = ids(rnd, 2 * t * b);
            double full = m.loss(in, tg, 2 * t, b, null, null, 0).loss();
            LanguageModel.Loss first = m.loss(Arrays.copyOf(in, t * b), Arrays.copyOf(tg, t * b), t, b, null, null, 0);
            LanguageModel.Loss second = m.loss(Arrays.copyOfRange(in, t * b, 2 * t * b), Arrays.copyOfRange(tg, t * b, 2 * t * b), t, b,
                    first.hN(), first.cN(), 0);
            assertEquals(full, (first.loss() + second.loss()) / 2, 1e-12, "loss of 2T steps vs two carried halves");
        }
    }

    @Test
    void generationFromPromptsAgreesWithTheTrainingLoss() {
        try (Backend be = new ReferenceBackend(); LanguageModel m = model(be, CellType.GRU)) {
            List<int[]> prompts = List.of(new int[] {3, 4, 5}, new int[] {6}, new int[] {1, 2});
            Decoded d = Greedy.decode(m.stepModel(prompts), LanguageModel.lastTokens(prompts), -1, 5);
            for (int i = 0; i < prompts.size(); i++) {
                int[] prompt = prompts.get(i), gen = d.tokens().get(i);
                assertEquals(5, gen.length, "item " + i + ": without an end token exactly maxLength tokens");
                int n = prompt.length + gen.length;
                int[] full = new int[n];
                System.arraycopy(prompt, 0, full, 0, prompt.length);
                System.arraycopy(gen, 0, full, prompt.length, gen.length);
                int[] in = Arrays.copyOf(full, n - 1), tg = Arrays.copyOfRange(full, 1, n);
                for (int s = 0; s < prompt.length - 1; s++) tg[s] = PAD;
                LanguageModel.Loss l = m.loss(in, tg, n - 1, 1, null, null, 0);
                assertEquals(-d.logProb()[i], l.loss() * l.tokens(), 1e-10, "item " + i + ": -logProb of the generated tokens vs summed loss");
            }
            Decoded s1 = new Sampler(1.3, 4).decode(m.stepModel(prompts), LanguageModel.lastTokens(prompts), -1, 7);
            Decoded s2 = new Sampler(1.3, 4).decode(m.stepModel(prompts), LanguageModel.lastTokens(prompts), -1, 7);
            for (int i = 0; i < prompts.size(); i++) assertArrayEquals(s1.tokens().get(i), s2.tokens().get(i), "seeded sample " + i);
        }
    }

    @Test
    void checkpointRoundTripsBitExactly(@TempDir Path dir) throws Exception {
        try (Backend be = new ReferenceBackend(); LanguageModel m = model(be, CellType.LSTM); LanguageModel fresh = LanguageModel.create(V, 4,
                m.rnnConfig(), PAD, be, 99)) {
            Path f = dir.resolve("lm.safetensors");
            m.save(f);
            fresh.load(f);
            for (String n : m.parameters().names()) {
                assertArrayEquals(m.parameters().value(n).data(), fresh.parameters().value(n).data(), 0.0, "parameter " + n);
            }
            SplittableRandom rnd = new SplittableRandom(1);
            int[] in = ids(rnd, 10), tg = ids(rnd, 10);
            assertEquals(m.loss(in, tg, 5, 2, null, null, 0).loss(), fresh.loss(in, tg, 5, 2, null, null, 0).loss(), 0.0, "loss after reload");
            Path g = dir.resolve("lm2.safetensors");
            m.save(g, Map.of("vocabulary", "abcdefg"));
            try (LanguageModel opened = LanguageModel.open(g, be)) {
                assertEquals(m.rnnConfig(), opened.rnnConfig(), "configuration rebuilt from the checkpoint's metadata");
                assertEquals(m.loss(in, tg, 5, 2, null, null, 0).loss(), opened.loss(in, tg, 5, 2, null, null, 0).loss(), 0.0, "loss after open");
            }
            assertEquals("abcdefg", SafeTensors.read(g).metadata().get("vocabulary"), "extra metadata");
            var e = assertThrows(IllegalArgumentException.class, () -> m.save(g, Map.of("lm.vocab", "3")));
            assertTrue(e.getMessage().startsWith("extra: key 'lm.vocab' is reserved"), e.getMessage());
        }
    }
}
