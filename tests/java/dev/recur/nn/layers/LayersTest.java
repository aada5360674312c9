package dev.recur.nn.layers;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.io.DType;
import dev.recur.nn.train.Adam;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayersTest {
    static Tensor random(SplittableRandom rnd, int... shape) {
        Tensor t = Tensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) t.data()[i] = rnd.nextDouble(-1, 1);
        return t;
    }

    static double dot(Tensor a, Tensor b) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) s += a.data()[i] * b.data()[i];
        return s;
    }

    static void assertClose(String name, double expected, double actual, double tol) {
        if (!(Math.abs(expected - actual) <= tol)) {
            throw new AssertionError(name + ": expected " + expected + ", got " + actual + " (|diff| " + Math.abs(expected - actual) + " > " + tol + ")");
        }
    }

    @Test
    void linearForwardByHandAndBackwardAgainstFiniteDifferences() {
        Parameters p = new Parameters();
        Linear lin = new Linear(p, "fc", 2, 3, true, 1);
        System.arraycopy(new double[] {1, 2, 3, 4, 5, 6}, 0, p.value("fc.weight").data(), 0, 6);
        System.arraycopy(new double[] {0.5, -1, 0}, 0, p.value("fc.bias").data(), 0, 3);
        Tensor y = lin.forward(Tensor.of(new double[] {1, -1}, 1, 2));
        assertArrayEquals(new double[] {-0.5, -2, -1}, y.data(), 0.0, "y = W x + b");

        SplittableRandom rnd = new SplittableRandom(3);
        Tensor x = random(rnd, 4, 2, 2), dy = random(rnd, 4, 2, 3);
        Tensor dx = lin.backward(x, dy);
        double eps = 1e-6;
        for (int i = 0; i < x.size(); i++) {
            double o = x.data()[i];
            x.data()[i] = o + eps;
            double lp = dot(lin.forward(x), dy);
            x.data()[i] = o - eps;
            double lm = dot(lin.forward(x), dy);
            x.data()[i] = o;
            assertClose("dx[" + i + "]", (lp - lm) / (2 * eps), dx.data()[i], 1e-8);
        }
        for (String n : p.names()) {
            Tensor w = p.value(n);
            for (int i = 0; i < w.size(); i++) {
                double o = w.data()[i];
                w.data()[i] = o + eps;
                double lp = dot(lin.forward(x), dy);
                w.data()[i] = o - eps;
                double lm = dot(lin.forward(x), dy);
                w.data()[i] = o;
                assertClose("d" + n + "[" + i + "]", (lp - lm) / (2 * eps), p.grad(n).data()[i], 1e-8);
            }
        }
    }

    @Test
    void embeddingPaddingRowStaysZeroAndGetsNoGradient() {
        Parameters p = new Parameters();
        Embedding emb = new Embedding(p, "emb", 5, 3, 0, 9);
        Tensor w = p.value("emb.weight");
        assertArrayEquals(new double[3], Arrays.copyOfRange(w.data(), 0, 3), 0.0, "padding row starts at 0");
        Tensor y = emb.forward(new int[] {2, 0, 2, 4}, 2, 2);
        assertArrayEquals(new int[] {2, 2, 3}, y.shape(), "output shape");
        assertArrayEquals(Arrays.copyOfRange(w.data(), 6, 9), Arrays.copyOfRange(y.data(), 0, 3), 0.0, "row of id 2");
        assertArrayEquals(new double[3], Arrays.copyOfRange(y.data(), 3, 6), 0.0, "row of the padding id");
        Tensor dy = Tensor.of(new double[] {1, 2, 3, 7, 7, 7, 10, 20, 30, -1, -2, -3}, 2, 2, 3);
        emb.backward(new int[] {2, 0, 2, 4}, dy);
        assertArrayEquals(new double[] {0, 0, 0, 0, 0, 0, 11, 22, 33, 0, 0, 0, -1, -2, -3}, p.grad("emb.weight").data(), 0.0,
                "gradient rows: id 2 summed twice, padding none");
        new Adam(0.1).step(p);
        assertArrayEquals(new double[3], Arrays.copyOfRange(w.data(), 0, 3), 0.0, "padding row after an optimizer step");
        var e = assertThrows(IllegalArgumentException.class, () -> emb.forward(new int[] {5}, 1));
        assertTrue(e.getMessage().startsWith("ids: entry 0 must be in [0, 5)"), e.getMessage());
    }

    @Test
    void crossEntropyWithPaddingMaskByHand() {
        // Row 0: logits (0, ln 3) → softmax (1/4, 3/4), target 1 → loss -ln(3/4). Row 1 is padding. Row 2: target 0
        // of (0, 0) → loss ln 2. Mean over the two counted rows.
        Tensor logits = Tensor.of(new double[] {0, Math.log(3), 5, -5, 0, 0}, 3, 2);
        SoftmaxCrossEntropy.Result r = SoftmaxCrossEntropy.compute(logits, new int[] {1, -7, 0}, -7);
        assertEquals(2, r.count(), "counted rows");
        assertClose("loss", (-Math.log(0.75) + Math.log(2)) / 2, r.loss(), 1e-15);
        assertArrayEquals(new double[] {0.25 / 2, -0.25 / 2, 0, 0, 0.5 / 2 - 0.5, 0.5 / 2}, r.dlogits().data(), 1e-15, "dlogits");
        assertEquals(2, r.correct(), "argmax hits: row 0 (id 1) and row 2 (a tie goes to the lower id, 0)");
    }

    @Test
    void meanSquaredErrorByHand() {
        MeanSquaredError.Result r = MeanSquaredError.compute(Tensor.of(new double[] {1, 2, 4}, 3, 1), Tensor.of(new double[] {0, 2, 1}, 3, 1));
        assertClose("mse", (1 + 0 + 9) / 3.0, r.loss(), 1e-15);
        assertArrayEquals(new double[] {2 / 3.0, 0, 2 * 3 / 3.0}, r.dprediction().data(), 1e-15, "d mse / d prediction");
        var e = assertThrows(IllegalArgumentException.class, () -> MeanSquaredError.compute(Tensor.zeros(3, 1), Tensor.zeros(3)));
        assertTrue(e.getMessage().startsWith("target: expected shape [3, 1]"), e.getMessage());
    }

    @Test
    void parametersRoundTripThroughSafetensorsBitExactly(@TempDir Path dir) throws Exception {
        Parameters p = new Parameters();
        new Linear(p, "a", 3, 4, true, 1);
        new Embedding(p, "e", 6, 2, 0, 2);
        SplittableRandom rnd = new SplittableRandom(1);
        for (Tensor t : p.values().values()) for (int i = 0; i < t.size(); i++) t.data()[i] = rnd.nextGaussian() / 3;
        Map<String, Tensor> before = p.snapshot();
        Path f = dir.resolve("ckpt.safetensors");
        p.save(f, DType.F64);
        for (Tensor t : p.values().values()) Arrays.fill(t.data(), 0);
        long v = p.version();
        p.load(f);
        assertTrue(p.version() > v, "load marks the parameters changed");
        for (String n : p.names()) assertArrayEquals(before.get(n).data(), p.value(n).data(), 0.0, "parameter " + n + " after round trip");

        Parameters other = new Parameters();
        new Linear(other, "a", 3, 5, true, 1);
        new Embedding(other, "e", 6, 2, 0, 2);
        var e = assertThrows(IllegalArgumentException.class, () -> other.load(f));
        assertTrue(e.getMessage().contains("'a.weight' expected shape [5, 3], got [4, 3]"), e.getMessage());
        Map<String, Tensor> missing = new LinkedHashMap<>(before);
        missing.remove("a.bias");
        e = assertThrows(IllegalArgumentException.class, () -> p.copyFrom(missing));
        assertTrue(e.getMessage().contains("missing parameter(s) [a.bias]"), e.getMessage());
    }

    /** FD check of sum(logits * R) for a head: dx and a few entries of every parameter. */
    static void checkHead(Parameters p, Tensor x, Supplier<Tensor> logits, java.util.function.Function<Tensor, Tensor> backward, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor r = random(rnd, logits.get().shape());
        p.zeroGrad();
        Tensor dx = backward.apply(r);
        double eps = 1e-6;
        for (int i = 0; i < x.size(); i++) {
            double o = x.data()[i];
            x.data()[i] = o + eps;
            double lp = dot(logits.get(), r);
            x.data()[i] = o - eps;
            double lm = dot(logits.get(), r);
            x.data()[i] = o;
            assertClose("dx at flat index " + i, (lp - lm) / (2 * eps), dx.data()[i], 1e-7);
        }
        for (String n : p.names()) {
            Tensor w = p.value(n);
            for (int k = 0; k < 4; k++) {
                int i = rnd.nextInt(w.size());
                double o = w.data()[i];
                w.data()[i] = o + eps;
                p.markChanged();
                double lp = dot(logits.get(), r);
                w.data()[i] = o - eps;
                p.markChanged();
                double lm = dot(logits.get(), r);
                w.data()[i] = o;
                p.markChanged();
                assertClose("d " + n + " at flat index " + i, (lp - lm) / (2 * eps), p.grad(n).data()[i], 1e-7);
            }
        }
    }

    @Test
    void manyToOneHeadsBackwardMatchesFiniteDifferences() {
        int[] lengths = {4, 2, 3};
        for (Pooling pool : Pooling.values()) {
            RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 3, 4).layers(2).bidirectional(true).build();
            try (Backend be = new ReferenceBackend()) {
                Parameters p = new Parameters();
                try (SequenceClassifier head = new SequenceClassifier(p, "cls", cfg, 5, pool, be, 3)) {
                    Tensor x = random(new SplittableRandom(4), 4, 3, 3);
                    checkHead(p, x, () -> {
                        try (SequenceClassifier.Pass pass = head.forward(x, lengths, 0)) {
                            return pass.logits();
                        }
                    }, r -> {
                        try (SequenceClassifier.Pass pass = head.forward(x, lengths, 0)) {
                            return head.backward(pass, r);
                        }
                    }, 7);
                    Tensor pred = head.predict(x, lengths);
                    try (SequenceClassifier.Pass pass = head.forward(x, lengths, 0)) {
                        assertArrayEquals(pass.logits().data(), pred.data(), 1e-12, pool + ": predict equals the training forward");
                    }
                }
            }
        }
    }

    @Test
    void taggerBackwardMatchesFiniteDifferences() {
        int[] lengths = {3, 1};
        RnnConfig cfg = RnnConfig.builder(CellType.GRU, 2, 3).layers(2).bidirectional(true).build();
        try (Backend be = new ReferenceBackend()) {
            Parameters p = new Parameters();
            try (SequenceTagger tagger = new SequenceTagger(p, "tag", cfg, 4, be, 5)) {
                Tensor x = random(new SplittableRandom(8), 3, 2, 2);
                checkHead(p, x, () -> {
                    try (SequenceTagger.Pass pass = tagger.forward(x, lengths, 0)) {
                        return pass.logits();
                    }
                }, r -> {
                    try (SequenceTagger.Pass pass = tagger.forward(x, lengths, 0)) {
                        return tagger.backward(pass, r);
                    }
                }, 9);
                assertArrayEquals(new int[] {3, 2, 4}, tagger.predict(x, lengths).shape(), "tag logits shape");
            }
        }
    }
}
