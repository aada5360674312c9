package dev.recur.nn;

import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every public entry point of {@link Rnn}, {@link RnnConfig} and {@link RnnWeights} refuses bad input with an
 * {@link IllegalArgumentException} whose message names the argument, the expected and the actual value.
 */
class RnnValidationTest {
    private static final int I = 3;
    private static final int H = 4;
    private static final int T = 5;
    private static final int B = 2;

    private ReferenceBackend backend;
    private RnnConfig lstmCfg;
    private RnnConfig gruCfg;
    private Rnn lstm;
    private Rnn gru;

    @BeforeEach
    void open() {
        backend = new ReferenceBackend();
        lstmCfg = RnnConfig.builder(CellType.LSTM, I, H).layers(2).bidirectional(true).build();
        gruCfg = RnnConfig.builder(CellType.GRU, I, H).build();
        lstm = Rnn.create(lstmCfg, backend, RnnWeights.init(lstmCfg, 1));
        gru = Rnn.create(gruCfg, backend, RnnWeights.init(gruCfg, 2));
    }

    @AfterEach
    void close() {
        lstm.close();
        gru.close();
        backend.close();
    }

    /** Runs {@code call}, expects an IllegalArgumentException whose message contains every fragment. */
    private static IllegalArgumentException rejects(Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        String msg = e.getMessage();
        assertNotNull(msg, "exception without a message");
        for (String f : fragments) {
            assertTrue(msg.contains(f), () -> "message '" + msg + "' should contain '" + f + "'");
        }
        return e;
    }

    private static Tensor x(int t, int b, int i) {
        return Tensor.full(0.1, t, b, i);
    }

    // ---- RnnConfig ----

    @Test
    void configRejectsNonPositiveSizes() {
        rejects(() -> RnnConfig.builder(CellType.LSTM, 0, H).build(), "inputSize", "> 0", "got 0");
        rejects(() -> RnnConfig.builder(CellType.LSTM, I, -2).build(), "hiddenSize", "> 0", "got -2");
        rejects(() -> RnnConfig.builder(CellType.LSTM, I, H).layers(0).build(), "numLayers", "> 0", "got 0");
        rejects(() -> RnnConfig.builder(CellType.LSTM, I, H).projSize(-1).build(), "projSize", ">= 0", "got -1");
    }

    @Test
    void configRejectsNullEnums() {
        rejects(() -> RnnConfig.builder(null, I, H).build(), "cell", "null");
        rejects(() -> RnnConfig.builder(CellType.GRU, I, H).gruReset(null).build(), "gruReset", "null");
        rejects(() -> RnnConfig.builder(CellType.GRU, I, H).merge(null).build(), "merge", "null");
    }

    @Test
    void configRejectsProjectionOnGruAndTooLargeProjection() {
        rejects(() -> RnnConfig.builder(CellType.GRU, I, H).projSize(2).build(), "projSize", "LSTM", "GRU");
        rejects(() -> RnnConfig.builder(CellType.LSTM, I, H).projSize(H).build(), "projSize", "< hiddenSize (4)", "got 4");
        rejects(() -> RnnConfig.builder(CellType.LSTM, I, H).projSize(H + 3).build(), "projSize", "< hiddenSize (4)", "got 7");
    }

    @Test
    void configRejectsLstmOnlyAndGatedOnlyOptionsElsewhere() {
        rejects(() -> RnnConfig.builder(CellType.GRU, I, H).peephole(true).build(), "peephole", "LSTM", "GRU");
        rejects(() -> RnnConfig.builder(CellType.RNN_TANH, I, H).coupledGate(true).build(), "coupledGate", "LSTM", "RNN_TANH");
        rejects(() -> RnnConfig.builder(CellType.RNN_RELU, I, H).layerNorm(true).build(), "layerNorm", "LSTM and GRU", "RNN_RELU");
        rejects(() -> RnnConfig.builder(CellType.RNN_TANH, I, H).recurrentDropout(0.2).build(), "dropout", "LSTM and GRU", "RNN_TANH");
    }

    @Test
    void configRejectsDropoutOutsideZeroOne() {
        for (double p : new double[] {-0.1, 1.0, 1.5, Double.NaN}) {
            rejects(() -> RnnConfig.builder(CellType.LSTM, I, H).dropout(p).build(), "dropout:", "[0, 1)", "got " + p);
            rejects(() -> RnnConfig.builder(CellType.LSTM, I, H).inputDropout(p).build(), "inputDropout", "[0, 1)", "got " + p);
            rejects(() -> RnnConfig.builder(CellType.GRU, I, H).recurrentDropout(p).build(), "recurrentDropout", "[0, 1)", "got " + p);
        }
    }

    @Test
    void configRejectsWeightsLargerThanAnArray() {
        rejects(() -> RnnConfig.builder(CellType.LSTM, 100_000, 10_000).build(), "hiddenSize/inputSize", "exceeds the limit");
    }

    // ---- RnnWeights ----

    @Test
    void weightsRejectMissingTensorNamingItsShape() {
        Map<String, Tensor> m = new HashMap<>(RnnWeights.init(lstmCfg, 3).asMap());
        m.remove("weight_hh_l1_reverse");
        rejects(() -> RnnWeights.of(lstmCfg, m), "weight_hh_l1_reverse", "missing", "[16, 4]");
    }

    @Test
    void weightsRejectWrongShapeNamingBothShapes() {
        Map<String, Tensor> m = new HashMap<>(RnnWeights.init(lstmCfg, 3).asMap());
        m.put("weight_ih_l1", Tensor.zeros(16, 3));
        rejects(() -> RnnWeights.of(lstmCfg, m), "weight_ih_l1", "expected shape [16, 8]", "got [16, 3]");
    }

    @Test
    void weightsRejectExtraTensor() {
        Map<String, Tensor> m = new LinkedHashMap<>(RnnWeights.init(gruCfg, 3).asMap());
        m.put("weight_hr_l0", Tensor.zeros(2, H));
        rejects(() -> RnnWeights.of(gruCfg, m), "unexpected", "weight_hr_l0");
    }

    @Test
    void weightsRejectNullMapAndUnknownName() {
        rejects(() -> RnnWeights.of(gruCfg, null), "weights", "null");
        rejects(() -> RnnWeights.init(gruCfg, 1).get("weight_ih_l7"), "weight_ih_l7");
    }

    // ---- Rnn.create / setWeights ----

    @Test
    void createRejectsNullsAndMismatchedWeights() {
        RnnWeights w = RnnWeights.init(gruCfg, 1);
        rejects(() -> Rnn.create(null, backend, w), "config", "null");
        rejects(() -> Rnn.create(gruCfg, null, w), "backend", "null");
        rejects(() -> Rnn.create(gruCfg, backend, null), "weights", "null");
        RnnConfig wider = RnnConfig.builder(CellType.GRU, I, H + 1).build();
        rejects(() -> Rnn.create(wider, backend, w), "weight_ih_l0", "expected shape [15, 3]", "got [12, 3]");
        rejects(() -> gru.setWeights(RnnWeights.init(wider, 1)), "weight_ih_l0", "expected shape [12, 3]", "got [15, 3]");
        rejects(() -> gru.setWeights(null), "weights", "null");
    }

    // ---- Rnn.forward ----

    @Test
    void forwardRejectsMissingInput() {
        rejects(() -> gru.forward(null), "input", "null");
        rejects(() -> gru.forward(new RnnInput(null, null, null, null)), "x", "missing");
    }

    @Test
    void forwardRejectsWrongXRankAndSize() {
        rejects(() -> gru.forward(RnnInput.of(Tensor.zeros(T, I))), "x", "rank 3", "[T, B, I]", "[5, 3]");
        rejects(() -> gru.forward(RnnInput.of(x(T, B, I + 1))), "x", "input size 3", "[5, 2, 4]");
        rejects(() -> gru.forward(RnnInput.of(Tensor.zeros(0, B, I))), "x", "T must be > 0", "[0, 2, 3]");
        rejects(() -> gru.forward(RnnInput.of(Tensor.zeros(T, 0, I))), "x", "B must be > 0", "[5, 0, 3]");
    }

    @Test
    void batchFirstForwardNamesItsLayout() {
        RnnConfig bf = gruCfg.toBuilder().batchFirst(true).build();
        try (Rnn r = Rnn.create(bf, backend, RnnWeights.init(bf, 1))) {
            rejects(() -> r.forward(RnnInput.of(Tensor.zeros(B, T))), "x", "[B, T, I]", "[2, 5]");
        }
    }

    @Test
    void forwardRejectsWrongStateShapes() {
        Tensor x = x(T, B, I);
        rejects(() -> lstm.forward(RnnInput.of(x).withState(Tensor.zeros(2, B, H), null)), "h0", "[4, 2, 4]", "[2, 2, 4]");
        rejects(() -> lstm.forward(RnnInput.of(x).withState(null, Tensor.zeros(4, B + 1, H))), "c0", "[4, 2, 4]", "[4, 3, 4]");
        rejects(() -> gru.forward(RnnInput.of(x).withState(null, Tensor.zeros(1, B, H))), "c0", "only LSTM", "GRU");
    }

    @Test
    void forwardRejectsBadLengths() {
        Tensor x = x(T, B, I);
        rejects(() -> gru.forward(RnnInput.of(x).withLengths(new int[] {5})), "lengths", "expected 2", "got 1");
        rejects(() -> gru.forward(RnnInput.of(x).withLengths(new int[] {5, 0})), "lengths", "entry 1", "[1, 5]", "got 0");
        rejects(() -> gru.forward(RnnInput.of(x).withLengths(new int[] {6, 2})), "lengths", "entry 0", "[1, 5]", "got 6");
        rejects(() -> gru.forward(RnnInput.of(x).withLengths(new int[] {-1, 2})), "lengths", "entry 0", "[1, 5]", "got -1");
    }

    @Test
    void checkFiniteNamesTheTensorAndIndex() {
        gru.checkFinite(true);
        Tensor x = x(T, B, I);
        x.data()[7] = Double.NaN;
        rejects(() -> gru.forward(RnnInput.of(x)), "x", "NaN", "index 7");
    }

    // ---- Rnn.backward ----

    @Test
    void backwardRequiresATrainingForward() {
        RnnOutput out = gru.forward(RnnInput.of(x(T, B, I)));
        rejects(() -> gru.backward(out, null, null, null), "out", "forwardTraining");
        rejects(() -> gru.backward(null, null, null, null), "out", "null");
    }

    @Test
    void backwardRejectsWrongGradientShapes() {
        try (RnnOutput out = lstm.forwardTraining(RnnInput.of(x(T, B, I)), 1)) {
            rejects(() -> lstm.backward(out, Tensor.zeros(T, B, H), null, null), "dy", "[5, 2, 8]", "[5, 2, 4]");
            rejects(() -> lstm.backward(out, null, Tensor.zeros(4, B, H + 1), null), "dhN", "[4, 2, 4]", "[4, 2, 5]");
            rejects(() -> lstm.backward(out, null, null, Tensor.zeros(1, B, H)), "dcN", "[4, 2, 4]", "[1, 2, 4]");
        }
        try (RnnOutput out = gru.forwardTraining(RnnInput.of(x(T, B, I)), 1)) {
            rejects(() -> gru.backward(out, null, null, Tensor.zeros(1, B, H)), "dcN", "only LSTM", "GRU");
        }
    }

    @Test
    void backwardRejectsAnotherNetworksTrace() {
        try (Rnn other = Rnn.create(gruCfg, backend, RnnWeights.init(gruCfg, 2));
             RnnOutput out = other.forwardTraining(RnnInput.of(x(T, B, I)), 1)) {
            rejects(() -> gru.backward(out, null, null, null), "trace");
        }
    }

    @Test
    void everyCallAfterCloseFails() {
        RnnOutput out = gru.forwardTraining(RnnInput.of(x(T, B, I)), 1);
        gru.close();
        gru.close();
        assertThrows(IllegalStateException.class, () -> gru.forward(RnnInput.of(x(T, B, I))));
        assertThrows(IllegalStateException.class, () -> gru.forwardTraining(RnnInput.of(x(T, B, I)), 1));
        assertThrows(IllegalStateException.class, () -> gru.backward(out, null, null, null));
        assertThrows(IllegalStateException.class, () -> gru.setWeights(RnnWeights.init(gruCfg, 1)));
    }

    @Test
    void backwardAfterTheTraceIsClosedFails() {
        RnnOutput out = gru.forwardTraining(RnnInput.of(x(T, B, I)), 1);
        out.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> gru.backward(out, null, null, null));
        assertTrue(e.getMessage().contains("trace"), e.getMessage());
    }
}
