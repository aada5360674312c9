package dev.recur.backend.cpu;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceTestSupport;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.DeviceTestSupport.assertClose;
import static dev.recur.device.DeviceTestSupport.random;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The cpu backend against the float64 reference at widths the shared device suite does not reach: its cell
 * kernels run vectors of {@code L} lanes along the hidden units with a scalar tail, and the suite's hidden
 * sizes (at most 8) exercise almost only the tail. Here H = 2L+5 and P, I likewise odd, so every kernel runs
 * whole vectors, the tail, and vector dropout masks; on one thread and on two with every launch split over
 * the pool. Rule: {@code max|got-ref| <= 1e-4 * max(1, max|ref|)} per tensor, forward (inference and
 * training) and every gradient.
 */
class CpuBackendParityTest {
    private static final double TOL = 1e-4;
    private static final int L = CpuMath.S.length();
    private static final int H = 2 * L + 5;

    private static CpuBackend one;
    private static CpuBackend twoUnits;
    private static CpuBackend twoRows;

    @BeforeAll
    static void open() {
        one = new CpuBackend(1, CpuBackend.Thresholds.DEFAULT, CpuSeqKernels.Split.AUTO);
        twoUnits = new CpuBackend(2, CpuBackend.Thresholds.ALWAYS, CpuSeqKernels.Split.UNITS);
        twoRows = new CpuBackend(2, CpuBackend.Thresholds.ALWAYS, CpuSeqKernels.Split.ROWS);
    }

    @AfterAll
    static void close() {
        one.close();
        twoUnits.close();
        twoRows.close();
    }

    /**
     * How a run is cut: one thread; two threads with the sequence kernels split by hidden units; two threads split
     * by rows, at a batch of 13 (row panels of 6, 6 and 1: two row groups, one of them ending in a short panel).
     */
    enum Threads {
        ONE, TWO_UNITS, TWO_ROWS;

        CpuBackend backend() {
            return switch (this) {
                case ONE -> one;
                case TWO_UNITS -> twoUnits;
                case TWO_ROWS -> twoRows;
            };
        }

        int batch(Case c) {
            return this == TWO_ROWS ? 13 : c.batch();
        }
    }

    record Case(String name, RnnConfig cfg, int steps, int batch) {
        @Override
        public String toString() {
            return name;
        }
    }

    static List<Case> cases() {
        List<Case> list = new ArrayList<>();
        CellType lstm = CellType.LSTM, gru = CellType.GRU;
        list.add(new Case("lstm", RnnConfig.builder(lstm, 13, H).build(), 6, 5));
        list.add(new Case("lstm bi concat 2 layers", RnnConfig.builder(lstm, 13, H).bidirectional(true).layers(2).build(), 5, 4));
        list.add(new Case("lstm peephole coupled bi", RnnConfig.builder(lstm, 11, H).peephole(true).coupledGate(true)
                .bidirectional(true).build(), 5, 4));
        list.add(new Case("lstm peephole", RnnConfig.builder(lstm, 11, H).peephole(true).build(), 5, 4));
        list.add(new Case("lstm projection bi", RnnConfig.builder(lstm, 9, H).projSize(L + 3).bidirectional(true).build(), 5, 4));
        list.add(new Case("lstm all dropouts bi 2 layers residual sum", RnnConfig.builder(lstm, H, H).layers(2)
                .bidirectional(true).merge(MergeMode.SUM).inputDropout(0.2).recurrentDropout(0.3).dropout(0.25)
                .residual(true).build(), 5, 4));
        list.add(new Case("lstm projection recurrent dropout", RnnConfig.builder(lstm, 9, H).projSize(L + 3)
                .recurrentDropout(0.3).build(), 5, 4));
        list.add(new Case("gru", RnnConfig.builder(gru, 13, H).build(), 6, 5));
        list.add(new Case("gru bi ave 2 layers", RnnConfig.builder(gru, 13, H).bidirectional(true).layers(2)
                .merge(MergeMode.AVE).build(), 5, 4));
        list.add(new Case("gru all dropouts bi mul", RnnConfig.builder(gru, 7, H).bidirectional(true).merge(MergeMode.MUL)
                .inputDropout(0.2).recurrentDropout(0.3).build(), 5, 4));
        list.add(new Case("lstm layer norm bi peephole", RnnConfig.builder(lstm, 13, H).layerNorm(true).peephole(true)
                .bidirectional(true).build(), 5, 4));
        list.add(new Case("gru layer norm dropouts", RnnConfig.builder(gru, 13, H).layerNorm(true).inputDropout(0.2)
                .recurrentDropout(0.3).build(), 5, 4));
        list.add(new Case("gru reset-before bi recurrent dropout", RnnConfig.builder(gru, 13, H)
                .gruReset(dev.recur.config.GruReset.BEFORE).bidirectional(true).recurrentDropout(0.3).build(), 5, 4));
        list.add(new Case("gru reset-before layer norm", RnnConfig.builder(gru, 13, H)
                .gruReset(dev.recur.config.GruReset.BEFORE).layerNorm(true).build(), 5, 4));
        list.add(new Case("rnn_tanh bi", RnnConfig.builder(CellType.RNN_TANH, 13, H).bidirectional(true).build(), 6, 4));
        list.add(new Case("rnn_relu 2 layers dropout", RnnConfig.builder(CellType.RNN_RELU, 13, H).layers(2).dropout(0.3)
                .build(), 6, 4));
        return list;
    }

    static Stream<Arguments> rows() {
        List<Arguments> args = new ArrayList<>();
        for (Threads threads : Threads.values()) for (Case c : cases()) args.add(Arguments.of(threads, c));
        return args.stream();
    }

    @ParameterizedTest(name = "threads={0}: {1}")
    @MethodSource("rows")
    void matchesReference(Threads threads, Case c) {
        CpuBackend be = threads.backend();
        RnnConfig cfg = c.cfg();
        int T = c.steps(), B = threads.batch(c);
        long seed = c.name().hashCode();
        RnnWeights w = DeviceTestSupport.randomWeights(cfg, seed);
        SplittableRandom rnd = new SplittableRandom(seed * 31 + 7);
        int ld = cfg.numLayers() * cfg.directions();
        Tensor x = random(rnd, 1, T, B, cfg.inputSize());
        Tensor h0 = random(rnd, 0.8, ld, B, cfg.outSize());
        Tensor c0 = cfg.cell() == CellType.LSTM ? random(rnd, 0.8, ld, B, cfg.hiddenSize()) : null;
        int[] lengths = new int[B];
        for (int i = 0; i < B; i++) lengths[i] = 1 + rnd.nextInt(T);
        lengths[0] = T;
        Tensor dy = random(rnd, 1, T, B, cfg.outputWidth());
        Tensor dhN = random(rnd, 1, ld, B, cfg.outSize());
        Tensor dcN = c0 != null ? random(rnd, 1, ld, B, cfg.hiddenSize()) : null;
        RnnInput in = new RnnInput(x, h0, c0, lengths);
        String what = "cpu " + threads + " / " + c.name();
        long before = be.memoryInUse();
        try (Backend refBe = ReferenceBackend.PROVIDER.open();
             Rnn ref = Rnn.create(cfg, refBe, w);
             Rnn cpu = Rnn.create(cfg, be, w)) {
            try (RnnOutput ro = ref.forward(in); RnnOutput go = cpu.forward(in)) {
                assertClose(what + " (inference)", "y", ro.y(), go.y(), TOL);
                assertClose(what + " (inference)", "h_n", ro.hN(), go.hN(), TOL);
                assertClose(what + " (inference)", "c_n", ro.cN(), go.cN(), TOL);
            }
            long dropSeed = seed * 1_000_003L + 0x1234_5678_9abcL;
            try (RnnOutput ro = ref.forwardTraining(in, dropSeed); RnnOutput go = cpu.forwardTraining(in, dropSeed)) {
                assertClose(what, "y", ro.y(), go.y(), TOL);
                assertClose(what, "h_n", ro.hN(), go.hN(), TOL);
                assertClose(what, "c_n", ro.cN(), go.cN(), TOL);
                RnnGradients rg = ref.backward(ro, dy, dhN, dcN);
                RnnGradients gg = cpu.backward(go, dy, dhN, dcN);
                assertClose(what, "dx", rg.dx(), gg.dx(), TOL);
                assertClose(what, "dh0", rg.dh0(), gg.dh0(), TOL);
                assertClose(what, "dc0", rg.dc0(), gg.dc0(), TOL);
                assertEquals(rg.weights().keySet(), gg.weights().keySet(), what + ": gradient names");
                for (Map.Entry<String, Tensor> e : rg.weights().entrySet()) {
                    assertClose(what, "d" + e.getKey(), e.getValue(), gg.weights().get(e.getKey()), TOL);
                }
            }
        }
        assertEquals(before, be.memoryInUse(), what + ": bytes still allocated after closing the network");
    }
}
