package dev.recur.backend.reference;

import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Central finite differences in float64 of every parameter and every input (x, h0, c0) against the
 * reference's backward through time, for every cell and option, 1 and 2 layers, uni- and bidirectional,
 * fixed and variable lengths, and each merge mode. The loss is
 * {@code sum(y*dy) + sum(h_n*dhn) + sum(c_n*dcn)} with random dy, dhn, dcn.
 */
class ReferenceGradientCheckTest {
    private static final double EPS = 1e-6;
    private static final int T = 4;
    private static final int I = 3;
    private static final int H = 3;
    private static final long DROPOUT_SEED = 0x5eedL;

    private record Variant(String name, CellType cell, UnaryOperator<RnnConfig.Builder> options) {}

    private static final List<Variant> VARIANTS = List.of(
            new Variant("rnn_tanh", CellType.RNN_TANH, b -> b),
            new Variant("rnn_relu", CellType.RNN_RELU, b -> b),
            new Variant("lstm", CellType.LSTM, b -> b),
            new Variant("lstm+proj", CellType.LSTM, b -> b.projSize(2)),
            new Variant("lstm+peephole", CellType.LSTM, b -> b.peephole(true)),
            new Variant("lstm+coupled", CellType.LSTM, b -> b.coupledGate(true)),
            new Variant("lstm+peephole+coupled", CellType.LSTM, b -> b.peephole(true).coupledGate(true)),
            new Variant("lstm+layerNorm", CellType.LSTM, b -> b.layerNorm(true)),
            new Variant("lstm+proj+peephole+layerNorm", CellType.LSTM, b -> b.projSize(2).peephole(true).layerNorm(true)),
            new Variant("lstm no bias", CellType.LSTM, b -> b.bias(false)),
            new Variant("gru after", CellType.GRU, b -> b.gruReset(GruReset.AFTER)),
            new Variant("gru before", CellType.GRU, b -> b.gruReset(GruReset.BEFORE)),
            new Variant("gru before no bias", CellType.GRU, b -> b.gruReset(GruReset.BEFORE).bias(false)),
            new Variant("gru after no bias+layerNorm", CellType.GRU, b -> b.bias(false).layerNorm(true)),
            new Variant("gru after+layerNorm", CellType.GRU, b -> b.gruReset(GruReset.AFTER).layerNorm(true)),
            new Variant("gru before+layerNorm", CellType.GRU, b -> b.gruReset(GruReset.BEFORE).layerNorm(true)),
            new Variant("lstm+dropout", CellType.LSTM, b -> b.inputDropout(0.3).recurrentDropout(0.4)),
            new Variant("gru after+dropout", CellType.GRU, b -> b.inputDropout(0.3).recurrentDropout(0.4)),
            new Variant("gru before+dropout", CellType.GRU, b -> b.gruReset(GruReset.BEFORE).inputDropout(0.3).recurrentDropout(0.4)));

    /** Variants that only make sense with two layers: inter-layer dropout and residual connections. */
    private static final List<Variant> TWO_LAYER_VARIANTS = List.of(
            new Variant("rnn_tanh+between-dropout+residual", CellType.RNN_TANH, b -> b.dropout(0.3).residual(true)),
            new Variant("lstm+between-dropout", CellType.LSTM, b -> b.dropout(0.3)),
            new Variant("lstm+residual", CellType.LSTM, b -> b.residual(true)),
            new Variant("lstm+proj+between-dropout+residual", CellType.LSTM, b -> b.projSize(2).dropout(0.3).residual(true)),
            new Variant("gru+all dropouts+residual+layerNorm", CellType.GRU,
                    b -> b.layerNorm(true).inputDropout(0.2).recurrentDropout(0.2).dropout(0.3).residual(true)));

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Variant v : VARIANTS) {
            for (int layers : new int[] {1, 2}) addShapes(out, v, layers);
        }
        for (Variant v : TWO_LAYER_VARIANTS) addShapes(out, v, 2);
        return out.stream();
    }

    private static void addShapes(List<Arguments> out, Variant v, int layers) {
        for (boolean bi : new boolean[] {false, true}) {
            for (boolean variable : new boolean[] {false, true}) {
                List<MergeMode> merges = bi ? Arrays.asList(MergeMode.values()) : List.of(MergeMode.CONCAT);
                for (MergeMode m : merges) {
                    RnnConfig c = v.options().apply(RnnConfig.builder(v.cell(), I, H).layers(layers).bidirectional(bi).merge(m))
                            .build();
                    String label = v.name() + " L=" + layers + (bi ? " bi " + m : " uni") + (variable ? " var-len" : " full");
                    out.add(Arguments.of(label, c, variable));
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void analyticGradientsMatchFiniteDifferences(String label, RnnConfig c, boolean variableLengths) {
        int batch = variableLengths ? 3 : 2;
        int[] lengths = variableLengths ? new int[] {T, 1, 3} : new int[] {T, T};
        long seed = 1000 + label.hashCode();
        SplittableRandom rnd = new SplittableRandom(seed);
        int ld = c.numLayers() * c.directions();
        boolean lstm = c.cell() == CellType.LSTM;
        Tensor x = RefTestSupport.random(rnd, 1.0, T, batch, I);
        Tensor h0 = RefTestSupport.random(rnd, 0.5, ld, batch, c.outSize());
        Tensor c0 = lstm ? RefTestSupport.random(rnd, 0.5, ld, batch, H) : null;
        Tensor dy = RefTestSupport.random(rnd, 1.0, T, batch, c.outputWidth());
        Tensor dhn = RefTestSupport.random(rnd, 1.0, ld, batch, c.outSize());
        Tensor dcn = lstm ? RefTestSupport.random(rnd, 1.0, ld, batch, H) : null;
        RnnWeights w = RefTestSupport.randomWeights(c, seed);

        try (ReferenceRnn engine = new ReferenceRnn(c)) {
            engine.setWeights(w);
            RnnGradients g;
            try (RnnOutput out = engine.forward(x, h0, c0, lengths, true, DROPOUT_SEED)) {
                g = engine.backward(out.trace(), dy, dhn, dcn);
            }
            Loss loss = () -> {
                RnnOutput o = engine.forward(x, h0, c0, lengths, true, DROPOUT_SEED);
                return RefTestSupport.dot(o.y(), dy) + RefTestSupport.dot(o.hN(), dhn) + RefTestSupport.dot(o.cN(), dcn);
            };
            boolean relu = c.cell() == CellType.RNN_RELU;
            check(label, "x", x, g.dx(), loss, () -> {}, relu);
            check(label, "h0", h0, g.dh0(), loss, () -> {}, relu);
            if (lstm) check(label, "c0", c0, g.dc0(), loss, () -> {}, relu);
            assertEquals(RnnWeights.shapes(c).keySet(), g.weights().keySet(), label + ": gradient names");
            for (Map.Entry<String, Tensor> e : w.asMap().entrySet()) {
                Tensor grad = g.weight(e.getKey());
                assertTrue(Arrays.equals(e.getValue().shape(), grad.shape()), label + ": shape of gradient " + e.getKey());
                check(label, e.getKey(), e.getValue(), grad, loss, () -> engine.setWeights(w), relu);
            }
        }
    }

    @FunctionalInterface
    private interface Loss {
        double eval();
    }

    /**
     * Perturbs each element of {@code t} in place by ±EPS (calling {@code reload} so the engine sees it) and
     * compares the central difference with the analytic gradient.
     */
    private static void check(String label, String name, Tensor t, Tensor analytic, Loss loss, Runnable reload, boolean relu) {
        double[] d = t.data();
        double base = relu ? loss.eval() : 0;
        for (int i = 0; i < d.length; i++) {
            double orig = d[i];
            d[i] = orig + EPS;
            reload.run();
            double lp = loss.eval();
            d[i] = orig - EPS;
            reload.run();
            double lm = loss.eval();
            d[i] = orig;
            reload.run();
            if (relu) {
                int idx = i;
                // A ReLU kink inside [-EPS, EPS] shows as a second difference of order EPS instead of EPS^2.
                double second = Math.abs(lp + lm - 2 * base);
                assertTrue(second < 1e-9, () -> label + ": a ReLU pre-activation is within reach of 0 when perturbing "
                        + name + " " + Arrays.toString(RefTestSupport.unflatten(idx, t.shape()))
                        + "; choose another seed (second difference " + second + ")");
            }
            double fd = (lp - lm) / (2 * EPS);
            double an = analytic.data()[i];
            if (!(Math.abs(fd - an) <= 1e-6 + 1e-5 * Math.abs(fd))) {
                throw new AssertionError(label + ": d/d" + name + " at " + Arrays.toString(RefTestSupport.unflatten(i, t.shape()))
                        + ": finite difference " + fd + ", analytic " + an + " (|diff| " + Math.abs(fd - an) + ")");
            }
        }
    }
}
