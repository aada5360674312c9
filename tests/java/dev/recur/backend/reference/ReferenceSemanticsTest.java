package dev.recur.backend.reference;

import dev.recur.config.CellType;
import dev.recur.config.DropoutMask;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.backend.reference.RefTestSupport.assertClose;
import static dev.recur.backend.reference.RefTestSupport.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the reference computes, checked against the contract rather than against itself: padding, each
 * sequence's own last step, the reverse direction's start, layouts, dropout, and single steps computed by
 * hand from the equations.
 */
class ReferenceSemanticsTest {
    private static final int T = 5;
    private static final int[] LENGTHS = {5, 2, 3, 1};
    private static final int B = LENGTHS.length;

    static Stream<Arguments> networks() {
        return Stream.of(
                Arguments.of("rnn_tanh 2 layers bi concat", RnnConfig.builder(CellType.RNN_TANH, 3, 4).layers(2).bidirectional(true).build()),
                Arguments.of("rnn_relu bi sum", RnnConfig.builder(CellType.RNN_RELU, 3, 4).bidirectional(true).merge(MergeMode.SUM).build()),
                Arguments.of("lstm 2 layers bi mul residual", RnnConfig.builder(CellType.LSTM, 3, 4).layers(2).bidirectional(true)
                        .merge(MergeMode.MUL).residual(true).build()),
                Arguments.of("lstm proj peephole 2 layers bi ave", RnnConfig.builder(CellType.LSTM, 3, 4).projSize(2).peephole(true)
                        .layers(2).bidirectional(true).merge(MergeMode.AVE).build()),
                Arguments.of("gru after layerNorm 2 layers bi", RnnConfig.builder(CellType.GRU, 3, 4).layerNorm(true).layers(2)
                        .bidirectional(true).build()),
                Arguments.of("gru before 3 layers uni residual", RnnConfig.builder(CellType.GRU, 3, 4).gruReset(GruReset.BEFORE)
                        .layers(3).residual(true).build()));
    }

    private record Data(Tensor x, Tensor h0, Tensor c0) {}

    private static Data data(RnnConfig c, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int ld = c.numLayers() * c.directions();
        return new Data(random(rnd, 1.0, T, B, c.inputSize()), random(rnd, 0.5, ld, B, c.outSize()),
                c.cell() == CellType.LSTM ? random(rnd, 0.5, ld, B, c.hiddenSize()) : null);
    }

    /** Rows [t0, t0+n) along axis 0 and column b along axis 1 of a rank-3 tensor: a [n, 1, F] tensor. */
    private static Tensor pick(Tensor t, int axis1Index, int n) {
        int a1 = t.dim(1), f = t.dim(2);
        Tensor r = Tensor.zeros(n, 1, f);
        for (int i = 0; i < n; i++) System.arraycopy(t.data(), (i * a1 + axis1Index) * f, r.data(), i * f, f);
        return r;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("networks")
    void paddedOutputsAreExactlyZeroAndStatesComeFromEachSequencesOwnLastStep(String label, RnnConfig c) {
        RnnWeights w = RefTestSupport.randomWeights(c, 11);
        Data d = data(c, 12);
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(w);
            RnnOutput all = e.forward(d.x(), d.h0(), d.c0(), LENGTHS, false, 0);
            for (int t = 0; t < T; t++) {
                for (int b = 0; b < B; b++) {
                    for (int j = 0; j < c.outputWidth(); j++) {
                        double v = all.y().get(t, b, j);
                        if (t >= LENGTHS[b]) {
                            assertEquals(0.0, v, 0.0, label + ": y[" + t + "," + b + "," + j + "] at a padded step");
                        } else if (c.cell() != CellType.RNN_RELU) {
                            // (ReLU outputs are legitimately 0 inside a sequence.)
                            assertTrue(v != 0.0, label + ": y[" + t + "," + b + "," + j + "] inside the sequence is exactly 0");
                        }
                    }
                }
            }
            // Each sequence alone, with T = its own length: same outputs, same final states. For the reverse
            // direction this means it started at the sequence's own last step, not at T-1.
            for (int b = 0; b < B; b++) {
                int len = LENGTHS[b];
                RnnOutput alone = e.forward(pick(d.x(), b, len), pick(d.h0(), b, d.h0().dim(0)),
                        d.c0() == null ? null : pick(d.c0(), b, d.c0().dim(0)), new int[] {len}, false, 0);
                assertClose(label + ": y of sequence " + b, alone.y(), pick(all.y(), b, len), 1e-12);
                assertClose(label + ": h_n of sequence " + b, alone.hN(), pick(all.hN(), b, all.hN().dim(0)), 1e-12);
                if (c.cell() == CellType.LSTM) {
                    assertClose(label + ": c_n of sequence " + b, alone.cN(), pick(all.cN(), b, all.cN().dim(0)), 1e-12);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("networks")
    void upstreamGradientsAtPaddedStepsHaveNoEffect(String label, RnnConfig c) {
        RnnWeights w = RefTestSupport.randomWeights(c, 21);
        Data d = data(c, 22);
        SplittableRandom rnd = new SplittableRandom(23);
        Tensor dy = random(rnd, 1.0, T, B, c.outputWidth());
        Tensor dyNoisy = dy.copy();
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                if (t >= LENGTHS[b])
                    for (int j = 0; j < c.outputWidth(); j++) dyNoisy.set(100 * rnd.nextDouble(-1, 1), t, b, j);
        int ld = c.numLayers() * c.directions();
        Tensor dhn = random(rnd, 1.0, ld, B, c.outSize());
        Tensor dcn = c.cell() == CellType.LSTM ? random(rnd, 1.0, ld, B, c.hiddenSize()) : null;
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(w);
            RnnGradients g1;
            RnnGradients g2;
            try (RnnOutput o = e.forward(d.x(), d.h0(), d.c0(), LENGTHS, true, 5)) {
                g1 = e.backward(o.trace(), dy, dhn, dcn);
                g2 = e.backward(o.trace(), dyNoisy, dhn, dcn);
            }
            assertClose(label + ": dx", g1.dx(), g2.dx(), 0.0);
            assertClose(label + ": dh0", g1.dh0(), g2.dh0(), 0.0);
            if (dcn != null) assertClose(label + ": dc0", g1.dc0(), g2.dc0(), 0.0);
            for (String name : g1.weights().keySet()) {
                assertClose(label + ": d" + name, g1.weight(name), g2.weight(name), 0.0);
            }
            // The inputs at padded steps are never read, so their gradient is exactly 0.
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++)
                    if (t >= LENGTHS[b])
                        for (int j = 0; j < c.inputSize(); j++)
                            assertEquals(0.0, g1.dx().get(t, b, j), 0.0, label + ": dx[" + t + "," + b + "," + j + "] at a padded step");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("networks")
    void batchFirstEqualsTimeMajorTransposed(String label, RnnConfig c) {
        RnnConfig bf = c.toBuilder().batchFirst(true).build();
        RnnWeights w = RefTestSupport.randomWeights(c, 31);
        Data d = data(c, 32);
        Tensor dy = random(new SplittableRandom(33), 1.0, T, B, c.outputWidth());
        try (ReferenceBackend be = new ReferenceBackend();
             Rnn tm = Rnn.create(c, be, w);
             Rnn bm = Rnn.create(bf, be, w)) {
            RnnOutput o1 = tm.forwardTraining(new RnnInput(d.x(), d.h0(), d.c0(), LENGTHS), 3);
            RnnOutput o2 = bm.forwardTraining(new RnnInput(d.x().transpose01(), d.h0(), d.c0(), LENGTHS), 3);
            assertClose(label + ": y", o1.y(), o2.y().transpose01(), 0.0);
            assertClose(label + ": h_n", o1.hN(), o2.hN(), 0.0);
            RnnGradients g1 = tm.backward(o1, dy, null, null);
            RnnGradients g2 = bm.backward(o2, dy.transpose01(), null, null);
            assertClose(label + ": dx", g1.dx(), g2.dx().transpose01(), 0.0);
            assertClose(label + ": dh0", g1.dh0(), g2.dh0(), 0.0);
            for (String name : g1.weights().keySet()) assertClose(label + ": d" + name, g1.weight(name), g2.weight(name), 0.0);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("networks")
    void trainingWithoutDropoutEqualsInference(String label, RnnConfig c) {
        RnnWeights w = RefTestSupport.randomWeights(c, 41);
        Data d = data(c, 42);
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(w);
            RnnOutput inf = e.forward(d.x(), d.h0(), d.c0(), LENGTHS, false, 0);
            assertNull(inf.trace(), label + ": inference must save nothing");
            try (RnnOutput tr = e.forward(d.x(), d.h0(), d.c0(), LENGTHS, true, 99)) {
                assertClose(label + ": y", inf.y(), tr.y(), 0.0);
                assertClose(label + ": h_n", inf.hN(), tr.hN(), 0.0);
                if (c.cell() == CellType.LSTM) assertClose(label + ": c_n", inf.cN(), tr.cN(), 0.0);
                assertTrue(tr.trace().savedBytes() > 0, label + ": training trace holds nothing");
            }
        }
    }

    @Test
    void savedBytesCountsTheSavedArrays() {
        int i = 3, h = 4, b = 2, t = 5;
        RnnConfig c = RnnConfig.builder(CellType.LSTM, i, h).build();
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.init(c, 1));
            Tensor x = random(new SplittableRandom(1), 1, t, b, i);
            RnnOutput o = e.forward(x, Tensor.zeros(1, b, h), Tensor.zeros(1, b, h), new int[] {5, 2}, true, 0);
            // Per step: x̃ (I), h̃ (H), c_{t-1} (H), four gates (4H), c (H), h (H); plus the lengths (int).
            long steps = 5 + 2;
            assertEquals(steps * (i + 8L * h) * 8 + 4L * b, o.trace().savedBytes(), "savedBytes");
            o.close();
            assertEquals(0, o.trace().savedBytes(), "savedBytes after close");
            assertThrows(IllegalStateException.class, () -> e.backward(o.trace(), Tensor.zeros(t, b, h),
                    Tensor.zeros(1, b, h), Tensor.zeros(1, b, h)));
        }
    }

    @Test
    void dropoutMaskKeepsAboutOneMinusPAndScalesKeptValues() {
        int n = 200_000;
        for (double p : new double[] {0.1, 0.3, 0.5, 0.8}) {
            int kept = 0;
            for (int idx = 0; idx < n; idx++) {
                double v = DropoutMask.value(77, DropoutMask.stream(1, 1, DropoutMask.RECURRENT), idx, p);
                if (v != 0.0) {
                    kept++;
                    assertEquals(1.0 / (1.0 - p), v, 0.0, "kept mask value at p=" + p + ", index " + idx);
                }
            }
            double frac = kept / (double) n;
            // Binomial standard deviation is below 0.0012 here; 0.005 is over 4 sigma.
            assertEquals(1 - p, frac, 0.005, "kept fraction at p=" + p);
        }
        assertEquals(1.0, DropoutMask.value(5, 0, 0, 0.0), 0.0, "p=0 keeps everything unscaled");
    }

    /**
     * Input dropout is one mask per sequence: a training forward equals an inference forward on x ⊙ m_x, where
     * m_x[b, j] comes from {@link DropoutMask} and is the same at every step. The kept fraction is about 1-p.
     */
    @Test
    void inputDropoutIsAVariationalMaskOnX() {
        double p = 0.4;
        int batch = 40, in = 25;
        RnnConfig drop = RnnConfig.builder(CellType.LSTM, in, 3).bidirectional(true).inputDropout(p).build();
        RnnConfig plain = drop.toBuilder().inputDropout(0).build();
        RnnWeights w = RefTestSupport.randomWeights(plain, 51);
        Tensor x = random(new SplittableRandom(52), 1.0, 3, batch, in);
        int[] len = new int[batch];
        java.util.Arrays.fill(len, 3);
        long seed = 1234;
        try (ReferenceRnn e = new ReferenceRnn(drop); ReferenceRnn ref = new ReferenceRnn(plain)) {
            e.setWeights(RnnWeights.of(drop, w.asMap()));
            ref.setWeights(w);
            RnnOutput got = e.forward(x, Tensor.zeros(2, batch, 3), Tensor.zeros(2, batch, 3), len, true, seed);
            // Each direction has its own input mask, so check them one at a time through the state h_n.
            int kept = 0;
            for (int dir = 0; dir < 2; dir++) {
                Tensor xm = x.copy();
                for (int t = 0; t < 3; t++)
                    for (int b = 0; b < batch; b++)
                        for (int j = 0; j < in; j++) {
                            double m = DropoutMask.value(seed, DropoutMask.stream(0, dir, DropoutMask.INPUT), b * in + j, p);
                            if (t == 0 && m != 0) kept++;
                            xm.set(xm.get(t, b, j) * m, t, b, j);
                        }
                RnnOutput want = ref.forward(xm, Tensor.zeros(2, batch, 3), Tensor.zeros(2, batch, 3), len, false, 0);
                assertClose("h_n of direction " + dir, pick3(want.hN(), dir), pick3(got.hN(), dir), 1e-12);
            }
            assertEquals(1 - p, kept / (2.0 * batch * in), 0.05, "kept fraction of the input masks");
        }
    }

    private static Tensor pick3(Tensor t, int i0) {
        int n = t.dim(1) * t.dim(2);
        Tensor r = Tensor.zeros(1, t.dim(1), t.dim(2));
        System.arraycopy(t.data(), i0 * n, r.data(), 0, n);
        return r;
    }

    /**
     * Recurrent dropout masks h only where it meets W_hh: with one sequence, that is the same as scaling
     * column j of W_hh by m_h[j] (GRU's z*h keeps the unmasked h).
     */
    @Test
    void recurrentDropoutMasksHOnlyInTheRecurrentMatmul() {
        double p = 0.5;
        int hs = 6;
        for (GruReset reset : GruReset.values()) {
            RnnConfig drop = RnnConfig.builder(CellType.GRU, 2, hs).gruReset(reset).recurrentDropout(p).build();
            RnnConfig plain = drop.toBuilder().recurrentDropout(0).build();
            RnnWeights w = RefTestSupport.randomWeights(plain, 61);
            RnnWeights scaled = w.copy();
            long seed = 4321;
            int dropped = 0;
            Tensor whh = scaled.get("weight_hh_l0");
            for (int j = 0; j < hs; j++) {
                double m = DropoutMask.value(seed, DropoutMask.stream(0, 0, DropoutMask.RECURRENT), j, p);
                if (m == 0) dropped++;
                for (int r = 0; r < 3 * hs; r++) whh.set(whh.get(r, j) * m, r, j);
            }
            assertTrue(dropped > 0 && dropped < hs, "seed should drop some but not all units, dropped " + dropped);
            Tensor x = random(new SplittableRandom(62), 1.0, 4, 1, 2);
            Tensor h0 = random(new SplittableRandom(63), 1.0, 1, 1, hs);
            try (ReferenceRnn e = new ReferenceRnn(drop); ReferenceRnn ref = new ReferenceRnn(plain)) {
                e.setWeights(RnnWeights.of(drop, w.asMap()));
                ref.setWeights(scaled);
                RnnOutput got = e.forward(x, h0, null, new int[] {4}, true, seed);
                RnnOutput want = ref.forward(x, h0, null, new int[] {4}, false, 0);
                assertClose("GRU " + reset + " y", want.y(), got.y(), 1e-12);
            }
        }
    }

    /**
     * Inter-layer dropout: a two-layer training forward equals layer 0 alone, its output multiplied by the
     * fresh per-element mask, fed to layer 1 alone (both in inference).
     */
    @Test
    void betweenLayerDropoutMultipliesLayerZerosOutput() {
        double p = 0.3;
        long seed = 777;
        RnnConfig two = RnnConfig.builder(CellType.LSTM, 3, 4).layers(2).bidirectional(true).dropout(p).build();
        RnnWeights w = RefTestSupport.randomWeights(two, 71);
        RnnConfig first = RnnConfig.builder(CellType.LSTM, 3, 4).bidirectional(true).build();
        RnnConfig second = RnnConfig.builder(CellType.LSTM, 8, 4).bidirectional(true).build();
        Map<String, Tensor> w0 = new HashMap<>();
        Map<String, Tensor> w1 = new HashMap<>();
        w.asMap().forEach((k, v) -> {
            if (k.contains("_l0")) w0.put(k, v);
            else w1.put(k.replace("_l1", "_l0"), v);
        });
        Data d = data(two, 72);
        Tensor h0a = Tensor.zeros(2, B, 4), h0b = Tensor.zeros(2, B, 4);
        System.arraycopy(d.h0().data(), 0, h0a.data(), 0, 2 * B * 4);
        System.arraycopy(d.h0().data(), 2 * B * 4, h0b.data(), 0, 2 * B * 4);
        Tensor c0a = Tensor.zeros(2, B, 4), c0b = Tensor.zeros(2, B, 4);
        System.arraycopy(d.c0().data(), 0, c0a.data(), 0, 2 * B * 4);
        System.arraycopy(d.c0().data(), 2 * B * 4, c0b.data(), 0, 2 * B * 4);
        try (ReferenceRnn e = new ReferenceRnn(two); ReferenceRnn e0 = new ReferenceRnn(first); ReferenceRnn e1 = new ReferenceRnn(second)) {
            e.setWeights(w);
            e0.setWeights(RnnWeights.of(first, w0));
            e1.setWeights(RnnWeights.of(second, w1));
            RnnOutput got = e.forward(d.x(), d.h0(), d.c0(), LENGTHS, true, seed);
            Tensor y0 = e0.forward(d.x(), h0a, c0a, LENGTHS, false, 0).y();
            int zeros = 0;
            int stream = DropoutMask.stream(0, 0, DropoutMask.BETWEEN_LAYERS);
            for (int idx = 0; idx < y0.size(); idx++) {
                double m = DropoutMask.value(seed, stream, idx, p);
                if (m == 0) zeros++;
                y0.data()[idx] *= m;
            }
            assertTrue(zeros > 0, "the mask should drop something");
            RnnOutput want = e1.forward(y0, h0b, c0b, LENGTHS, false, 0);
            assertClose("y", want.y(), got.y(), 1e-12);
        }
    }

    // ---- single steps by hand, H = 1, I = 1 ----

    private static double sig(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    private static Tensor t1(double... v) {
        return Tensor.of(v, v.length, 1);
    }

    private static Tensor v1(double... v) {
        return Tensor.of(v, v.length);
    }

    private static Tensor s3(double v) {
        return Tensor.of(new double[] {v}, 1, 1, 1);
    }

    @Test
    void lstmSingleStepByHand() {
        RnnConfig c = RnnConfig.builder(CellType.LSTM, 1, 1).build();
        double x = 0.7, h0 = -0.3, c0 = 0.5;
        // Gate rows i, f, g, o.
        double[] wi = {0.2, -0.4, 0.9, 0.3}, wh = {0.5, 0.1, -0.7, 0.8}, bi = {0.1, 0.2, -0.1, 0.05}, bh = {-0.2, 0.3, 0.15, 0.0};
        Map<String, Tensor> m = Map.of("weight_ih_l0", t1(wi), "weight_hh_l0", t1(wh), "bias_ih_l0", v1(bi), "bias_hh_l0", v1(bh));
        double i = sig(wi[0] * x + bi[0] + wh[0] * h0 + bh[0]);
        double f = sig(wi[1] * x + bi[1] + wh[1] * h0 + bh[1]);
        double g = Math.tanh(wi[2] * x + bi[2] + wh[2] * h0 + bh[2]);
        double o = sig(wi[3] * x + bi[3] + wh[3] * h0 + bh[3]);
        double c1 = f * c0 + i * g;
        double h1 = o * Math.tanh(c1);
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.of(c, m));
            RnnOutput out = e.forward(s3(x), s3(h0), s3(c0), new int[] {1}, false, 0);
            assertEquals(h1, out.y().get(0, 0, 0), 1e-15, "y");
            assertEquals(h1, out.hN().get(0, 0, 0), 1e-15, "h_n");
            assertEquals(c1, out.cN().get(0, 0, 0), 1e-15, "c_n");
        }
    }

    @Test
    void lstmPeepholeCoupledSingleStepByHand() {
        RnnConfig c = RnnConfig.builder(CellType.LSTM, 1, 1).peephole(true).coupledGate(true).build();
        double x = -0.6, h0 = 0.4, c0 = -0.8;
        // Gate rows i, g, o (coupled: f = 1 - i).
        double[] wi = {0.3, -0.5, 0.7}, wh = {-0.2, 0.6, 0.4}, bi = {0.05, 0.1, -0.3}, bh = {0.2, -0.1, 0.1};
        double wci = 0.9, wco = -0.7;
        Map<String, Tensor> m = Map.of("weight_ih_l0", t1(wi), "weight_hh_l0", t1(wh), "bias_ih_l0", v1(bi),
                "bias_hh_l0", v1(bh), "weight_ci_l0", v1(wci), "weight_co_l0", v1(wco));
        double i = sig(wi[0] * x + bi[0] + wh[0] * h0 + bh[0] + wci * c0);
        double f = 1 - i;
        double g = Math.tanh(wi[1] * x + bi[1] + wh[1] * h0 + bh[1]);
        double c1 = f * c0 + i * g;
        double o = sig(wi[2] * x + bi[2] + wh[2] * h0 + bh[2] + wco * c1);
        double h1 = o * Math.tanh(c1);
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.of(c, m));
            RnnOutput out = e.forward(s3(x), s3(h0), s3(c0), new int[] {1}, false, 0);
            assertEquals(h1, out.hN().get(0, 0, 0), 1e-15, "h_n");
            assertEquals(c1, out.cN().get(0, 0, 0), 1e-15, "c_n");
        }
    }

    @Test
    void lstmProjectionSingleStepByHand() {
        // H = 2, P = 1: h = W_hr (o ⊙ tanh(c)), and W_hh sees the projected h.
        RnnConfig c = RnnConfig.builder(CellType.LSTM, 1, 2).projSize(1).bias(false).build();
        double x = 0.5, h0 = -0.4;
        double[] c0 = {0.3, -0.2};
        double[] wi = {0.1, 0.2, 0.3, 0.4, -0.5, -0.6, 0.7, 0.8};
        double[] wh = {0.9, -0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.1};
        double[] whr = {0.6, -1.1};
        Map<String, Tensor> m = Map.of("weight_ih_l0", Tensor.of(wi, 8, 1), "weight_hh_l0", Tensor.of(wh, 8, 1),
                "weight_hr_l0", Tensor.of(whr, 1, 2));
        double h1 = 0;
        double[] c1 = new double[2];
        for (int j = 0; j < 2; j++) {
            double i = sig(wi[j] * x + wh[j] * h0);
            double f = sig(wi[2 + j] * x + wh[2 + j] * h0);
            double g = Math.tanh(wi[4 + j] * x + wh[4 + j] * h0);
            double o = sig(wi[6 + j] * x + wh[6 + j] * h0);
            c1[j] = f * c0[j] + i * g;
            h1 += whr[j] * o * Math.tanh(c1[j]);
        }
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.of(c, m));
            RnnOutput out = e.forward(s3(x), s3(h0), Tensor.of(c0.clone(), 1, 1, 2), new int[] {1}, false, 0);
            assertEquals(h1, out.hN().get(0, 0, 0), 1e-15, "h_n");
            assertEquals(c1[0], out.cN().get(0, 0, 0), 1e-15, "c_n[0]");
            assertEquals(c1[1], out.cN().get(0, 0, 1), 1e-15, "c_n[1]");
        }
    }

    @Test
    void gruSingleStepByHandBothResetConventions() {
        double x = 0.8, h0 = -0.5;
        // Gate rows r, z, n.
        double[] wi = {0.4, -0.3, 0.9}, wh = {0.2, 0.7, -1.2}, bi = {0.1, -0.2, 0.3}, bh = {0.05, 0.15, -0.4};
        double r = sig(wi[0] * x + bi[0] + wh[0] * h0 + bh[0]);
        double z = sig(wi[1] * x + bi[1] + wh[1] * h0 + bh[1]);
        double nAfter = Math.tanh(wi[2] * x + bi[2] + r * (wh[2] * h0 + bh[2]));
        double nBefore = Math.tanh(wi[2] * x + bi[2] + wh[2] * (r * h0) + bh[2]);
        double hAfter = (1 - z) * nAfter + z * h0;
        double hBefore = (1 - z) * nBefore + z * h0;
        assertTrue(Math.abs(hAfter - hBefore) > 1e-3, "the example should tell the conventions apart");
        for (GruReset reset : GruReset.values()) {
            RnnConfig c = RnnConfig.builder(CellType.GRU, 1, 1).gruReset(reset).build();
            Map<String, Tensor> m = Map.of("weight_ih_l0", t1(wi), "weight_hh_l0", t1(wh), "bias_ih_l0", v1(bi), "bias_hh_l0", v1(bh));
            try (ReferenceRnn e = new ReferenceRnn(c)) {
                e.setWeights(RnnWeights.of(c, m));
                RnnOutput out = e.forward(s3(x), s3(h0), null, new int[] {1}, false, 0);
                assertEquals(reset == GruReset.AFTER ? hAfter : hBefore, out.hN().get(0, 0, 0), 1e-15, "GRU " + reset + " h_n");
            }
        }
    }

    @Test
    void rnnTwoStepsBidirectionalByHand() {
        // T = 2: forward h_0 -> x0 -> x1; reverse starts at x1 (its own last step) and ends at x0.
        double[] x = {0.9, -0.4};
        double wi = 0.7, wh = -0.5, b = 0.1, wiR = -0.3, whR = 0.8, bR = -0.2;
        RnnConfig c = RnnConfig.builder(CellType.RNN_TANH, 1, 1).bidirectional(true).bias(false).build();
        Map<String, Tensor> m = Map.of("weight_ih_l0", t1(wi), "weight_hh_l0", t1(wh), "weight_ih_l0_reverse", t1(wiR),
                "weight_hh_l0_reverse", t1(whR));
        double f0 = Math.tanh(wi * x[0] + wh * b);
        double f1 = Math.tanh(wi * x[1] + wh * f0);
        double r1 = Math.tanh(wiR * x[1] + whR * bR);
        double r0 = Math.tanh(wiR * x[0] + whR * r1);
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.of(c, m));
            RnnOutput out = e.forward(Tensor.of(x.clone(), 2, 1, 1), Tensor.of(new double[] {b, bR}, 2, 1, 1), null,
                    new int[] {2}, false, 0);
            assertEquals(f0, out.y().get(0, 0, 0), 1e-15, "y[0] forward");
            assertEquals(r0, out.y().get(0, 0, 1), 1e-15, "y[0] reverse");
            assertEquals(f1, out.y().get(1, 0, 0), 1e-15, "y[1] forward");
            assertEquals(r1, out.y().get(1, 0, 1), 1e-15, "y[1] reverse");
            assertEquals(f1, out.hN().get(0, 0, 0), 1e-15, "h_n forward");
            assertEquals(r0, out.hN().get(1, 0, 0), 1e-15, "h_n reverse");
        }
    }

    @Test
    void rnnReluSingleStepByHand() {
        RnnConfig c = RnnConfig.builder(CellType.RNN_RELU, 2, 2).build();
        double[] wi = {0.5, -0.2, -0.3, -0.4}, wh = {0.1, 0.6, -0.8, 0.2}, bi = {0.1, -0.3}, bh = {0.2, 0.05};
        double[] x = {0.6, 1.5}, h0 = {-0.2, 0.7};
        Map<String, Tensor> m = Map.of("weight_ih_l0", Tensor.of(wi, 2, 2), "weight_hh_l0", Tensor.of(wh, 2, 2),
                "bias_ih_l0", v1(bi), "bias_hh_l0", v1(bh));
        double pre0 = wi[0] * x[0] + wi[1] * x[1] + bi[0] + wh[0] * h0[0] + wh[1] * h0[1] + bh[0];
        double pre1 = wi[2] * x[0] + wi[3] * x[1] + bi[1] + wh[2] * h0[0] + wh[3] * h0[1] + bh[1];
        assertTrue(pre0 > 0 && pre1 < 0, "the example should cover both sides of the ReLU");
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.of(c, m));
            RnnOutput out = e.forward(Tensor.of(x.clone(), 1, 1, 2), Tensor.of(h0.clone(), 1, 1, 2), null, new int[] {1}, false, 0);
            assertEquals(pre0, out.hN().get(0, 0, 0), 1e-15, "h_n[0]");
            assertEquals(0.0, out.hN().get(0, 0, 1), 0.0, "h_n[1]");
        }
    }

    /** Layer norm with H = 2: each gate block of two values normalises to ±|a-b|/2 / sqrt((a-b)^2/4 + eps). */
    @Test
    void gruLayerNormSingleStepByHand() {
        RnnConfig c = RnnConfig.builder(CellType.GRU, 1, 2).layerNorm(true).build();
        double x = 0.9;
        double[] h0 = {0.3, -0.6};
        double[] wi = {0.5, -0.4, 0.2, 0.8, -0.7, 0.3};
        double[] wh = {0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 0.1, 0.2, 0.3};
        double[] bi = {0.01, 0.02, 0.03, 0.04, 0.05, 0.06}, bh = {-0.01, -0.02, -0.03, -0.04, -0.05, -0.06};
        double[] gIh = {1.1, 0.9, 1.2, 0.8, 1.3, 0.7}, sIh = {0.1, -0.1, 0.2, -0.2, 0.3, -0.3};
        double[] gHh = {0.95, 1.05, 0.85, 1.15, 0.75, 1.25}, sHh = {-0.05, 0.05, -0.15, 0.15, -0.25, 0.25};
        Map<String, Tensor> m = new HashMap<>();
        m.put("weight_ih_l0", Tensor.of(wi, 6, 1));
        m.put("weight_hh_l0", Tensor.of(wh, 6, 2));
        m.put("bias_ih_l0", v1(bi));
        m.put("bias_hh_l0", v1(bh));
        m.put("ln_ih_weight_l0", v1(gIh));
        m.put("ln_ih_bias_l0", v1(sIh));
        m.put("ln_hh_weight_l0", v1(gHh));
        m.put("ln_hh_bias_l0", v1(sHh));
        double[] aIh = new double[6], aHh = new double[6];
        for (int blk = 0; blk < 3; blk++) {
            int u = 2 * blk, v = u + 1;
            double[] ih = ln2(wi[u] * x, wi[v] * x);
            double[] hh = ln2(wh[2 * u] * h0[0] + wh[2 * u + 1] * h0[1], wh[2 * v] * h0[0] + wh[2 * v + 1] * h0[1]);
            aIh[u] = ih[0] * gIh[u] + sIh[u];
            aIh[v] = ih[1] * gIh[v] + sIh[v];
            aHh[u] = hh[0] * gHh[u] + sHh[u];
            aHh[v] = hh[1] * gHh[v] + sHh[v];
        }
        double[] want = new double[2];
        for (int j = 0; j < 2; j++) {
            double r = sig(aIh[j] + bi[j] + aHh[j] + bh[j]);
            double z = sig(aIh[2 + j] + bi[2 + j] + aHh[2 + j] + bh[2 + j]);
            double n = Math.tanh(aIh[4 + j] + bi[4 + j] + r * (aHh[4 + j] + bh[4 + j]));
            want[j] = (1 - z) * n + z * h0[j];
        }
        try (ReferenceRnn e = new ReferenceRnn(c)) {
            e.setWeights(RnnWeights.of(c, m));
            RnnOutput out = e.forward(s3(x), Tensor.of(h0.clone(), 1, 1, 2), null, new int[] {1}, false, 0);
            assertEquals(want[0], out.hN().get(0, 0, 0), 1e-14, "h_n[0]");
            assertEquals(want[1], out.hN().get(0, 0, 1), 1e-14, "h_n[1]");
        }
    }

    /** Normalises a pair: mean (a+b)/2, biased variance ((a-b)/2)^2. */
    private static double[] ln2(double a, double b) {
        double half = (a - b) / 2;
        double s = Math.sqrt(half * half + RnnConfig.LAYER_NORM_EPS);
        return new double[] {half / s, -half / s};
    }
}
