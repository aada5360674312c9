package dev.recur.device;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
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

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.DeviceTestSupport.assertClose;
import static dev.recur.device.DeviceTestSupport.random;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every device backend against the float64 reference: forward (inference and training) and backward of
 * {@code sum(y*dy) + sum(h_n*dhN) + sum(c_n*dcN)} with random weights, inputs, states, lengths and output
 * gradients, compared per tensor with {@code max|got-ref| <= 1e-4 * max(1, max|ref|)}. Rows are backends
 * ({@link DeviceRows}); a backend that is unavailable here is reported as skipped with the reason.
 */
class DeviceParityTest {
    static final double TOL = 1e-4;

    /** One configuration with its sizes. */
    record Case(String name, RnnConfig cfg, int steps, int batch, boolean varLengths, long seed) {
        @Override
        public String toString() {
            return name;
        }
    }

    static RnnConfig.Builder b(CellType cell, int in, int hidden) {
        return RnnConfig.builder(cell, in, hidden);
    }

    static List<Case> cases() {
        List<Case> list = new ArrayList<>();
        long seed = 11;
        for (CellType cell : CellType.values()) {
            String n = cell.cliName();
            list.add(new Case(n + " 1 layer", b(cell, 4, 5).build(), 5, 3, false, seed++));
            list.add(new Case(n + " 2 layers lengths", b(cell, 4, 5).layers(2).build(), 6, 3, true, seed++));
            for (MergeMode m : MergeMode.values()) {
                list.add(new Case(n + " bi " + m + " lengths", b(cell, 3, 5).bidirectional(true).merge(m).build(),
                        5, 4, true, seed++));
            }
            list.add(new Case(n + " bi 2 layers concat lengths", b(cell, 4, 6).layers(2).bidirectional(true).build(),
                    6, 3, true, seed++));
            list.add(new Case(n + " bi 3 layers mul residual", b(cell, 5, 5).layers(3).bidirectional(true)
                    .merge(MergeMode.MUL).residual(true).build(), 4, 3, true, seed++));
            list.add(new Case(n + " 2 layers inter-layer dropout", b(cell, 4, 5).layers(2).dropout(0.4).build(),
                    5, 3, true, seed++));
            list.add(new Case(n + " no bias bi", b(cell, 4, 5).bias(false).bidirectional(true).build(), 4, 2, true, seed++));
            list.add(new Case(n + " batch-first bi sum", b(cell, 3, 4).batchFirst(true).bidirectional(true)
                    .merge(MergeMode.SUM).build(), 4, 3, true, seed++));
        }
        CellType lstm = CellType.LSTM, gru = CellType.GRU;
        list.add(new Case("lstm projection", b(lstm, 4, 6).projSize(3).build(), 5, 3, true, seed++));
        list.add(new Case("lstm projection bi 2 layers ave", b(lstm, 4, 6).projSize(4).layers(2).bidirectional(true)
                .merge(MergeMode.AVE).build(), 5, 3, true, seed++));
        list.add(new Case("lstm peephole", b(lstm, 4, 5).peephole(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm coupled", b(lstm, 4, 5).coupledGate(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm peephole coupled bi", b(lstm, 4, 5).peephole(true).coupledGate(true)
                .bidirectional(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm projection peephole bi", b(lstm, 4, 6).projSize(2).peephole(true)
                .bidirectional(true).build(), 5, 3, true, seed++));
        for (CellType cell : new CellType[] {lstm, gru}) {
            String n = cell.cliName();
            list.add(new Case(n + " input dropout", b(cell, 4, 5).inputDropout(0.3).build(), 5, 3, true, seed++));
            list.add(new Case(n + " recurrent dropout", b(cell, 4, 5).recurrentDropout(0.35).build(), 5, 3, true, seed++));
            list.add(new Case(n + " all dropouts bi 2 layers residual", b(cell, 5, 5).layers(2).bidirectional(true)
                    .merge(MergeMode.SUM).inputDropout(0.2).recurrentDropout(0.3).dropout(0.25).residual(true).build(),
                    5, 3, true, seed++));
        }
        list.add(new Case("gru reset-before", b(gru, 4, 5).gruReset(GruReset.BEFORE).build(), 5, 3, true, seed++));
        list.add(new Case("gru reset-before bi 2 layers ave", b(gru, 4, 5).gruReset(GruReset.BEFORE).layers(2)
                .bidirectional(true).merge(MergeMode.AVE).build(), 5, 3, true, seed++));
        list.add(new Case("gru reset-before all dropouts bi residual", b(gru, 5, 5).gruReset(GruReset.BEFORE).layers(2)
                .bidirectional(true).inputDropout(0.2).recurrentDropout(0.3).dropout(0.2).residual(true).build(),
                5, 3, true, seed++));
        list.add(new Case("gru reset-before no bias", b(gru, 4, 5).gruReset(GruReset.BEFORE).bias(false).build(),
                4, 2, false, seed++));
        list.add(new Case("lstm layer norm", b(lstm, 4, 5).layerNorm(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm layer norm bi 2 layers projection peephole", b(lstm, 4, 6).layerNorm(true).layers(2)
                .bidirectional(true).projSize(3).peephole(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm layer norm coupled dropouts", b(lstm, 4, 5).layerNorm(true).coupledGate(true)
                .inputDropout(0.2).recurrentDropout(0.3).build(), 5, 3, true, seed++));
        list.add(new Case("gru layer norm", b(gru, 4, 5).layerNorm(true).build(), 5, 3, true, seed++));
        list.add(new Case("gru layer norm bi 2 layers dropouts residual", b(gru, 5, 5).layerNorm(true).layers(2)
                .bidirectional(true).recurrentDropout(0.3).inputDropout(0.1).residual(true).build(), 5, 3, true, seed++));
        list.add(new Case("gru reset-before layer norm bi", b(gru, 4, 5).layerNorm(true).gruReset(GruReset.BEFORE)
                .bidirectional(true).recurrentDropout(0.2).build(), 5, 3, true, seed++));
        // Sizes that are not multiples of any work-group or GEMM block width.
        list.add(new Case("lstm wide bi 2 layers lengths", b(lstm, 29, 37).layers(2).bidirectional(true).build(),
                6, 19, true, seed++));
        list.add(new Case("gru wide bi sum dropouts", b(gru, 33, 21).bidirectional(true).merge(MergeMode.SUM)
                .recurrentDropout(0.2).inputDropout(0.1).build(), 5, 17, true, seed++));
        list.add(new Case("lstm wide projection layer norm", b(lstm, 18, 40).projSize(19).layerNorm(true).build(),
                4, 9, true, seed++));
        list.add(new Case("lstm projection recurrent dropout bi", b(lstm, 4, 6).projSize(3).bidirectional(true)
                .recurrentDropout(0.3).inputDropout(0.2).build(), 5, 3, true, seed++));
        return list;
    }

    /** Random supported configurations from a fixed list of seeds. */
    static List<Case> randomCases() {
        List<Case> list = new ArrayList<>();
        long[] seeds = {101, 202, 303, 404, 505, 606, 707, 808, 909, 1001, 1102, 1203};
        for (long s : seeds) {
            SplittableRandom r = new SplittableRandom(s);
            CellType cell = CellType.values()[r.nextInt(4)];
            int hidden = 1 + r.nextInt(8);
            RnnConfig.Builder bl = b(cell, 1 + r.nextInt(7), hidden).layers(1 + r.nextInt(3))
                    .bidirectional(r.nextBoolean()).merge(MergeMode.values()[r.nextInt(4)])
                    .bias(r.nextInt(4) != 0).residual(r.nextInt(3) == 0).batchFirst(r.nextInt(4) == 0);
            if (r.nextBoolean()) bl.dropout(0.3 * r.nextDouble());
            if (cell == CellType.GRU && r.nextBoolean()) bl.gruReset(GruReset.BEFORE);
            if ((cell == CellType.LSTM || cell == CellType.GRU) && r.nextInt(3) == 0) bl.layerNorm(true);
            if (cell == CellType.LSTM || cell == CellType.GRU) {
                if (r.nextBoolean()) bl.inputDropout(0.4 * r.nextDouble());
                if (r.nextBoolean()) bl.recurrentDropout(0.4 * r.nextDouble());
            }
            if (cell == CellType.LSTM) {
                if (hidden > 1 && r.nextBoolean()) bl.projSize(1 + r.nextInt(hidden - 1));
                bl.peephole(r.nextBoolean()).coupledGate(r.nextInt(3) == 0);
            }
            RnnConfig cfg = bl.build();
            list.add(new Case("random seed " + s + ": " + cfg, cfg, 1 + r.nextInt(7), 1 + r.nextInt(5), r.nextBoolean(), s));
        }
        return list;
    }

    static Stream<Arguments> rows(List<Case> cases) {
        List<Arguments> args = new ArrayList<>();
        for (String name : DeviceRows.NAMES) for (Case c : cases) args.add(Arguments.of(name, c));
        return args.stream();
    }

    static Stream<Arguments> fixedRows() {
        return rows(cases());
    }

    static Stream<Arguments> randomRows() {
        return rows(randomCases());
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("fixedRows")
    void matchesReference(String backend, Case c) {
        compare(DeviceRows.backend(backend), c);
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("randomRows")
    void randomConfigurationsMatchReference(String backend, Case c) {
        compare(DeviceRows.backend(backend), c);
    }

    static void compare(DeviceBackend be, Case c) {
        RnnConfig cfg = c.cfg();
        int T = c.steps(), B = c.batch();
        RnnWeights w = DeviceTestSupport.randomWeights(cfg, c.seed());
        SplittableRandom rnd = new SplittableRandom(c.seed() * 31 + 7);
        int ld = cfg.numLayers() * cfg.directions();
        Tensor x = cfg.batchFirst() ? random(rnd, 1, B, T, cfg.inputSize()) : random(rnd, 1, T, B, cfg.inputSize());
        Tensor h0 = random(rnd, 0.8, ld, B, cfg.outSize());
        Tensor c0 = cfg.cell() == CellType.LSTM ? random(rnd, 0.8, ld, B, cfg.hiddenSize()) : null;
        int[] lengths = null;
        if (c.varLengths()) {
            lengths = new int[B];
            for (int i = 0; i < B; i++) lengths[i] = 1 + rnd.nextInt(T);
            lengths[rnd.nextInt(B)] = T;
        }
        int W = cfg.outputWidth();
        Tensor dy = cfg.batchFirst() ? random(rnd, 1, B, T, W) : random(rnd, 1, T, B, W);
        Tensor dhN = random(rnd, 1, ld, B, cfg.outSize());
        Tensor dcN = c0 != null ? random(rnd, 1, ld, B, cfg.hiddenSize()) : null;
        RnnInput in = new RnnInput(x, h0, c0, lengths);
        long dropSeed = c.seed() * 1_000_003L + 0x1234_5678_9abcL;
        String what = be.name() + " / " + c.name();
        try (Backend refBe = ReferenceBackend.PROVIDER.open();
             Rnn ref = Rnn.create(cfg, refBe, w);
             Rnn dev = Rnn.create(cfg, be, w)) {
            try (RnnOutput ro = ref.forward(in); RnnOutput go = dev.forward(in)) {
                assertClose(what + " (inference)", "y", ro.y(), go.y(), TOL);
                assertClose(what + " (inference)", "h_n", ro.hN(), go.hN(), TOL);
                assertClose(what + " (inference)", "c_n", ro.cN(), go.cN(), TOL);
            }
            try (RnnOutput ro = ref.forwardTraining(in, dropSeed); RnnOutput go = dev.forwardTraining(in, dropSeed)) {
                assertClose(what, "y", ro.y(), go.y(), TOL);
                assertClose(what, "h_n", ro.hN(), go.hN(), TOL);
                assertClose(what, "c_n", ro.cN(), go.cN(), TOL);
                assertTrue(go.trace().savedBytes() > 0, what + ": a training trace saves something");
                RnnGradients rg = ref.backward(ro, dy, dhN, dcN);
                RnnGradients gg = dev.backward(go, dy, dhN, dcN);
                assertClose(what, "dx", rg.dx(), gg.dx(), TOL);
                assertClose(what, "dh0", rg.dh0(), gg.dh0(), TOL);
                assertClose(what, "dc0", rg.dc0(), gg.dc0(), TOL);
                for (Map.Entry<String, Tensor> e : rg.weights().entrySet()) {
                    assertClose(what, "d" + e.getKey(), e.getValue(), gg.weights().get(e.getKey()), TOL);
                }
                if (!gg.weights().keySet().equals(rg.weights().keySet())) {
                    throw new AssertionError(what + ": gradient names " + gg.weights().keySet() + ", expected "
                            + rg.weights().keySet());
                }
            }
        }
    }

    /**
     * Configurations the persistent (single-work-group, whole-sequence) forward kernels take: small batches, sizes
     * that leave partial 4-row blocks and more gate columns than work items (D*G*H > 256), lengths, both
     * directions, peepholes, the coupled gate, dropouts (training forward runs persistently too).
     */
    static List<Case> persistentCases() {
        CellType lstm = CellType.LSTM, gru = CellType.GRU;
        List<Case> list = new ArrayList<>();
        long seed = 7001;
        list.add(new Case("persistent lstm B=1", b(lstm, 6, 37).build(), 7, 1, false, seed++));
        list.add(new Case("persistent lstm bi lengths peephole coupled", b(lstm, 5, 9).bidirectional(true)
                .peephole(true).coupledGate(true).build(), 6, 3, true, seed++));
        list.add(new Case("persistent lstm wide bi 2 layers lengths", b(lstm, 7, 70).layers(2).bidirectional(true)
                .build(), 5, 6, true, seed++));
        list.add(new Case("persistent lstm dropouts peephole", b(lstm, 4, 6).peephole(true).recurrentDropout(0.3)
                .inputDropout(0.2).build(), 6, 2, true, seed++));
        list.add(new Case("persistent lstm H=20 bi peephole recurrent dropout", b(lstm, 5, 20).bidirectional(true)
                .peephole(true).recurrentDropout(0.3).build(), 5, 3, true, seed++));
        list.add(new Case("persistent rnn_relu H=24 bi lengths", b(CellType.RNN_RELU, 5, 24).bidirectional(true)
                .build(), 5, 3, true, seed++));
        list.add(new Case("persistent gru bi lengths recurrent dropout", b(gru, 5, 90).bidirectional(true)
                .recurrentDropout(0.25).build(), 5, 4, true, seed++));
        list.add(new Case("persistent gru 2 layers", b(gru, 3, 11).layers(2).build(), 6, 5, true, seed++));
        list.add(new Case("persistent rnn_tanh bi lengths", b(CellType.RNN_TANH, 4, 300).bidirectional(true).build(),
                5, 3, true, seed++));
        list.add(new Case("persistent rnn_relu 2 layers", b(CellType.RNN_RELU, 4, 7).layers(2).build(), 6, 1, false,
                seed++));
        return list;
    }

    static Stream<Arguments> persistentRows() {
        List<Arguments> args = new ArrayList<>();
        for (String name : DeviceRows.NAMES) {
            for (Case c : persistentCases()) {
                for (String mode : List.of("always", "never")) args.add(Arguments.of(name, c, mode));
            }
        }
        return args.stream();
    }

    /**
     * The persistent forward against the reference, forced on ({@code recur.persistent=always}; a backend without
     * the optional kernels runs per-step) and off, so both paths are checked on the same configurations.
     */
    @ParameterizedTest(name = "{0}: {1} (persistent {2})")
    @MethodSource("persistentRows")
    void persistentForwardMatchesReference(String backend, Case c, String mode) {
        DeviceBackend be = DeviceRows.backend(backend);
        if (backend.equals("opencl") && mode.equals("always")) {
            assertTrue(dev.recur.schedule.ScheduledRnn.persistentKernel(c.cfg(), c.batch(),
                    dev.recur.schedule.ScheduledRnn.Persistence.ALWAYS, be::supports) != null,
                    c.name() + ": the opencl backend runs this configuration persistently");
        }
        String old = System.getProperty("recur.persistent");
        System.setProperty("recur.persistent", mode);
        try {
            compare(be, c);
        } finally {
            if (old == null) System.clearProperty("recur.persistent");
            else System.setProperty("recur.persistent", old);
        }
    }

    @Test
    void unknownKernelAndWrongArgumentsAreRefusedByName() {
        DeviceBackend be = DeviceRows.backend("opencl");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> be.launch("no_such_kernel", new long[] {1}));
        assertTrue(e.getMessage().contains("no_such_kernel"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> be.launch("col_sum", new long[] {1}, 1, 1));
        assertTrue(e.getMessage().contains("col_sum") && e.getMessage().contains("arguments"), e.getMessage());
    }
}
