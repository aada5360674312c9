package dev.recur.nn;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Rnn#checkFinite}: a NaN or infinity in an input, a state, a weight or an output gradient is refused
 * naming the tensor and the first bad index; a diverging result (forward or gradients) is reported as an
 * {@link ArithmeticException} naming the result. Runs on every available backend.
 */
class CheckFiniteTest {
    static List<String> backends() {
        return Backends.providers().stream().filter(p -> p.probe().available()).map(BackendProvider::name).toList();
    }

    private static final int T = 4, B = 3, I = 5, H = 6;

    private static Tensor ramp(int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) (0.1 * Math.sin(i + 1));
        return t;
    }

    /** Runs {@code call} on a checked 2-layer LSTM and returns what it threw, which must be {@code type}. */
    private static <E extends RuntimeException> E thrown(String backend, Class<E> type, RnnConfig cfg, RnnWeights w,
                                                        Function<Rnn, Object> call) {
        try (Backend be = Backends.open(backend); Rnn rnn = Rnn.create(cfg, be, w).checkFinite(true)) {
            return assertThrows(type, () -> {
                Object r = call.apply(rnn);
                if (r instanceof RnnOutput o) o.close();
            });
        }
    }

    private static void assertMessage(RuntimeException e, String... fragments) {
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message should contain '" + f + "': " + e.getMessage());
    }

    private static RnnConfig lstm(boolean batchFirst) {
        return RnnConfig.builder(CellType.LSTM, I, H).layers(2).batchFirst(batchFirst).build();
    }

    @ParameterizedTest
    @MethodSource("backends")
    void aNonFiniteInputIsNamedWithItsFirstIndex(String backend) {
        RnnConfig cfg = lstm(false);
        RnnWeights w = RnnWeights.init(cfg, 3);
        Tensor x = ramp(T, B, I);
        x.set(Double.NaN, 2, 1, 3);
        x.set(Double.NaN, 3, 0, 0);
        var e = thrown(backend, IllegalArgumentException.class, cfg, w, r -> r.forward(RnnInput.of(x)));
        assertMessage(e, "x: non-finite value NaN at index [2, 1, 3]", "shape [4, 3, 5]");

        Tensor h0 = ramp(2, B, H);
        h0.set(Double.NEGATIVE_INFINITY, 1, 2, 4);
        e = thrown(backend, IllegalArgumentException.class, cfg, w,
                r -> r.forward(RnnInput.of(ramp(T, B, I)).withState(h0, null)));
        assertMessage(e, "h0: non-finite value -Infinity at index [1, 2, 4]");

        Tensor c0 = ramp(2, B, H);
        c0.set(Double.NaN, 0, 1, 0);
        e = thrown(backend, IllegalArgumentException.class, cfg, w,
                r -> r.forwardTraining(RnnInput.of(ramp(T, B, I)).withState(null, c0), 1));
        assertMessage(e, "c0: non-finite value NaN at index [0, 1, 0]");

        // Batch-first: the index is in the caller's layout [B, T, I].
        RnnConfig bf = lstm(true);
        Tensor xb = ramp(B, T, I);
        xb.set(Double.POSITIVE_INFINITY, 2, 0, 1);
        e = thrown(backend, IllegalArgumentException.class, bf, RnnWeights.of(bf, w.asMap()), r -> r.forward(RnnInput.of(xb)));
        assertMessage(e, "x: non-finite value Infinity at index [2, 0, 1]");
    }

    @ParameterizedTest
    @MethodSource("backends")
    void aNonFiniteWeightIsNamedWithItsFirstIndex(String backend) {
        RnnConfig cfg = lstm(false);
        RnnWeights w = RnnWeights.init(cfg, 3);
        w.get("weight_hh_l1").set(Double.NaN, 7, 2);
        var e = thrown(backend, IllegalArgumentException.class, cfg, w, r -> r.forward(RnnInput.of(ramp(T, B, I))));
        assertMessage(e, "weight_hh_l1: non-finite value NaN at index [7, 2]", "shape [24, 6]");

        // setWeights refuses them too, and the network keeps its previous weights.
        RnnWeights good = RnnWeights.init(cfg, 4);
        RnnWeights bad = good.copy();
        bad.get("bias_ih_l0").set(Double.POSITIVE_INFINITY, 5);
        try (Backend be = Backends.open(backend); Rnn rnn = Rnn.create(cfg, be, good).checkFinite(true)) {
            var e2 = assertThrows(IllegalArgumentException.class, () -> rnn.setWeights(bad));
            assertMessage(e2, "bias_ih_l0: non-finite value Infinity at index [5]");
            assertTrue(rnn.weights() == good, "the previous weights stay");
            try (RnnOutput o = rnn.forward(RnnInput.of(ramp(T, B, I)))) {
                assertTrue(Arrays.stream(o.y().data()).allMatch(Double::isFinite));
            }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void aNonFiniteOutputGradientIsNamed(String backend) {
        RnnConfig cfg = lstm(false);
        try (Backend be = Backends.open(backend); Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 3)).checkFinite(true);
             RnnOutput o = rnn.forwardTraining(RnnInput.of(ramp(T, B, I)), 9)) {
            Tensor dy = ramp(T, B, H);
            dy.set(Double.NaN, 3, 2, 5);
            var e = assertThrows(IllegalArgumentException.class, () -> rnn.backward(o, dy, null, null));
            assertMessage(e, "dy: non-finite value NaN at index [3, 2, 5]");
            Tensor dcN = ramp(2, B, H);
            dcN.set(Double.NEGATIVE_INFINITY, 1, 0, 0);
            e = assertThrows(IllegalArgumentException.class, () -> rnn.backward(o, null, null, dcN));
            assertMessage(e, "dcN: non-finite value -Infinity at index [1, 0, 0]");
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void withoutTheCheckANaNPropagatesSilently(String backend) {
        // The contrast that shows the reports above come from the check: off, the same input returns NaN outputs.
        RnnConfig cfg = lstm(false);
        Tensor x = ramp(T, B, I);
        x.set(Double.NaN, 2, 1, 3);
        try (Backend be = Backends.open(backend); Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 3));
             RnnOutput o = rnn.forward(RnnInput.of(x))) {
            assertTrue(Double.isNaN(o.y().get(2, 1, 0)), "y[2,1,0] should be NaN, got " + o.y().get(2, 1, 0));
            assertTrue(Double.isFinite(o.y().get(1, 1, 0)), "steps before the NaN stay finite");
        }
    }

    /** RNN_RELU with I = H = 1, weight_ih = 1, weight_hh = a, no bias, x = 1: h_t = 1 + a*h_{t-1}, about a^(t-1). */
    private static RnnWeights relu(RnnConfig cfg, double a) {
        RnnWeights w = RnnWeights.init(cfg, 1);
        w.get("weight_ih_l0").set(1, 0, 0);
        w.get("weight_hh_l0").set(a, 0, 0);
        return w;
    }

    @ParameterizedTest
    @MethodSource("backends")
    void aDivergingForwardIsReported(String backend) {
        RnnConfig cfg = RnnConfig.builder(CellType.RNN_RELU, 1, 1).bias(false).build();
        // 1e30^12 = 1e360 overflows float64 (and float32 far sooner) well before step 20.
        var e = thrown(backend, ArithmeticException.class, cfg, relu(cfg, 1e30),
                r -> r.forward(RnnInput.of(Tensor.full(1, 20, 1, 1))));
        assertMessage(e, "y (result): non-finite value Infinity at index [");
        int t = Integer.parseInt(e.getMessage().replaceAll(".*at index \\[(\\d+), 0, 0\\].*", "$1"));
        assertTrue(t >= 1 && t < 20, "the first infinite step is reported: " + e.getMessage());

        // The same network with the check off returns the infinities.
        try (Backend be = Backends.open(backend); Rnn rnn = Rnn.create(cfg, be, relu(cfg, 1e30));
             RnnOutput o = rnn.forward(RnnInput.of(Tensor.full(1, 20, 1, 1)))) {
            assertEquals(Double.POSITIVE_INFINITY, o.y().get(19, 0, 0));
        }
    }

    @Test
    void divergingGradientsAreReported() {
        // Forward stays finite in float64 (h_20 ~ 1e285), but a large output gradient pushes the weight and
        // input gradients past the double range.
        RnnConfig cfg = RnnConfig.builder(CellType.RNN_RELU, 1, 1).bias(false).build();
        try (Backend be = Backends.open("reference"); Rnn rnn = Rnn.create(cfg, be, relu(cfg, 1e15)).checkFinite(true);
             RnnOutput o = rnn.forwardTraining(RnnInput.of(Tensor.full(1, 20, 1, 1)), 1)) {
            assertTrue(Double.isFinite(o.y().get(19, 0, 0)) && o.y().get(19, 0, 0) > 1e280, "y[19] = " + o.y().get(19, 0, 0));
            Tensor dy = Tensor.full(1e100, 20, 1, 1);
            var e = assertThrows(ArithmeticException.class, () -> rnn.backward(o, dy, null, null));
            assertMessage(e, "(result): non-finite value Infinity at index [");
            assertTrue(e.getMessage().startsWith("dx (result)") || e.getMessage().startsWith("gradient of weight_"),
                    e.getMessage());
        }
    }
}
