package dev.recur.nn.lm;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.nn.train.ParamRule;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.recur.nn.lm.LanguageModelTrainerTest.B;
import static dev.recur.nn.lm.LanguageModelTrainerTest.E;
import static dev.recur.nn.lm.LanguageModelTrainerTest.T;
import static dev.recur.nn.lm.LanguageModelTrainerTest.V;
import static dev.recur.nn.lm.LanguageModelTrainerTest.batch;
import static dev.recur.nn.lm.LanguageModelTrainerTest.model;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LanguageModelTrainer} with an {@link OptimizerConfig} on every device backend against the float64 reference
 * trainer: (a) frozen parameters (a whole buffer, the embedding, and a range inside the RNN's weight space), whose
 * values stay bit-identical on every backend and whose state is never allocated; (b) AdamW with PyTorch's no-decay
 * grouping; (c) SGD with momentum and Nesterov. Each clips, and each step still moves only the ids in and the loss out.
 */
class LanguageModelTrainerOptimizerTest {
    static final int STEPS = 6;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static final OptimizerConfig FROZEN = OptimizerConfig.builder(OptimizerConfig.Kind.ADAM, 0.03).clipNorm(0.1)
            .frozen(ParamRule.names("embedding.weight", "rnn.weight_hh_l1")).build();
    static final OptimizerConfig ADAMW_NO_DECAY = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 0.03).weightDecay(0.5)
            .noDecay(ParamRule.torchNoDecay()).lrScale(ParamRule.names("output.bias"), 2).clipNorm(0.1).build();
    static final OptimizerConfig SGD_NESTEROV = OptimizerConfig.builder(OptimizerConfig.Kind.SGD, 0.5).momentum(0.9).nesterov(true)
            .weightDecay(1e-3).noDecay(ParamRule.torchNoDecay()).clipNorm(1.0).build();
    static final List<OptimizerConfig> CONFIGS = List.of(FROZEN, ADAMW_NO_DECAY, SGD_NESTEROV);

    record Run(double[] loss, Map<String, Tensor> start, Map<String, Tensor> end) {}

    static Run train(Backend be, OptimizerConfig c) {
        try (LanguageModel m = model(be, CellType.GRU)) {
            Map<String, Tensor> start = m.parameters().snapshot();
            double[] loss = new double[STEPS];
            try (LanguageModelTrainer t = m.trainer(LanguageModelTrainer.Config.of(c))) {
                for (int s = 0; s < STEPS; s++) {
                    int[][] b = batch(s);
                    loss[s] = t.step(b[0], b[1], T, B, s);
                }
            }
            return new Run(loss, start, m.parameters().snapshot());
        }
    }

    static void frozenStay(String what, Run r) {
        for (String n : List.of("embedding.weight", "rnn.weight_hh_l1")) {
            assertArrayEquals(r.start.get(n).data(), r.end.get(n).data(), 0.0, what + ": frozen " + n);
        }
        assertFalse(java.util.Arrays.equals(r.start.get("rnn.weight_hh_l0").data(), r.end.get("rnn.weight_hh_l0").data()),
                what + ": rnn.weight_hh_l0 trained");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void lossCurvesFollowTheReferenceAndFrozenValuesStay(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (OptimizerConfig c : CONFIGS) {
            Run ref;
            try (Backend rb = new ReferenceBackend()) {
                ref = train(rb, c);
            }
            Run dev = train(be, c);
            double worst = TrainTestSupport.assertLossCurveFollows(backend + " " + c.kind(), ref.loss, dev.loss, 1e-5);
            assertTrue(dev.loss[STEPS - 1] < dev.loss[0], backend + " " + c.kind() + ": the loss did not fall");
            System.out.printf("%s LM %s max rel loss diff over %d steps %.3g%n", backend, c.kind(), STEPS, worst);
            if (c == FROZEN) {
                frozenStay("reference", ref);
                frozenStay(backend, dev);
            }
        }
    }

    /** Freezing the embedding saves its two Adam moments; the ids in and the loss out stay the whole traffic. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void frozenStateIsNeverAllocatedAndTrafficIsUnchanged(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long[] held = new long[2];
        OptimizerConfig[] configs = {FROZEN.toBuilder().frozen(ParamRule.none()).build(),
                FROZEN.toBuilder().frozen(ParamRule.names("embedding.weight")).build()};
        for (int k = 0; k < 2; k++) {
            try (LanguageModel m = model(be, CellType.GRU)) {
                long before = be.memoryInUse();
                try (LanguageModelTrainer t = m.trainer(LanguageModelTrainer.Config.of(configs[k]))) {
                    held[k] = be.memoryInUse() - before;
                }
            }
        }
        // Adam's two moments of the embedding, and the one partial-norm slot of its run.
        assertEquals(2L * Float.BYTES * V * E + Float.BYTES, held[0] - held[1], backend + ": device bytes a frozen embedding saves");
        for (OptimizerConfig c : CONFIGS) {
            try (LanguageModel m = model(be, CellType.LSTM); LanguageModelTrainer t = m.trainer(LanguageModelTrainer.Config.of(c))) {
                for (int s = 0; s < 3; s++) {
                    int[][] b = batch(s);
                    Traffic before = be.traffic();
                    t.step(b[0], b[1], T, B, s);
                    Traffic d = be.traffic().minus(before);
                    if (s == 0) continue;
                    assertEquals(2L * T * B * Integer.BYTES, d.bytesToDevice(), backend + " " + c.kind() + ": bytes up at step " + s);
                    assertEquals(Float.BYTES, d.bytesToHost(), backend + " " + c.kind() + ": bytes down at step " + s);
                    assertEquals(1, d.blockingWaits(), backend + " " + c.kind() + ": blocking waits at step " + s);
                }
            }
        }
    }
}
