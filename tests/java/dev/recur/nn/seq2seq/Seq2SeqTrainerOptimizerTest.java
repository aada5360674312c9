package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.nn.train.ParamRule;
import dev.recur.nn.train.SamplingSchedule;
import dev.recur.nn.train.Sgd;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.batch;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.config;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Seq2SeqTrainer} with an {@link OptimizerConfig} on every device backend (the demo's model shape) against the
 * float64 reference: (a) frozen parameters (the source embedding, a buffer of its own, and the encoder's reverse
 * direction, the end of its weight space), bit-identical on every backend, their state never allocated; (b) AdamW
 * with PyTorch's no-decay grouping; (c) SGD with momentum and Nesterov. Each clips; a step's traffic stays the ids in
 * and the loss out.
 */
class Seq2SeqTrainerOptimizerTest {
    static final int STEPS = 8;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static final ParamRule FROZEN_RULE = ParamRule.names("source_embedding.weight").or(ParamRule.regex("encoder\\..*_reverse"));
    static final OptimizerConfig FROZEN = OptimizerConfig.builder(OptimizerConfig.Kind.ADAM, 0.01).clipNorm(5.0).frozen(FROZEN_RULE).build();
    static final OptimizerConfig ADAMW_NO_DECAY = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 0.01).weightDecay(0.3)
            .noDecay(ParamRule.torchNoDecay()).lrScale(ParamRule.prefixes("decoder."), 0.5).clipNorm(0.3).build();
    static final OptimizerConfig SGD_NESTEROV = OptimizerConfig.builder(OptimizerConfig.Kind.SGD, 0.3).momentum(0.9).nesterov(true)
            .weightDecay(1e-3).noDecay(ParamRule.torchNoDecay()).clipNorm(1.0).build();
    static final List<OptimizerConfig> CONFIGS = List.of(FROZEN, ADAMW_NO_DECAY, SGD_NESTEROV);

    record Run(double[] loss, Map<String, Tensor> start, Map<String, Tensor> end) {}

    static Run train(Backend be, OptimizerConfig c) {
        try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
            Map<String, Tensor> start = m.parameters().snapshot();
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, c, SamplingSchedule.constant(1), 9);
            double[] loss = new double[STEPS];
            for (int s = 0; s < STEPS; s++) loss[s] = trainer.step(batch(s)).loss();
            return new Run(loss, start, m.parameters().snapshot());
        }
    }

    static void frozenStay(String what, Run r) {
        int frozen = 0;
        for (String n : r.start.keySet()) {
            if (!FROZEN_RULE.matches(n, r.start.get(n).shape())) continue;
            frozen++;
            assertArrayEquals(r.start.get(n).data(), r.end.get(n).data(), 0.0, what + ": frozen " + n);
        }
        assertEquals(5, frozen, "the source embedding and the encoder's four reverse tensors");
        assertFalse(Arrays.equals(r.start.get("encoder.weight_hh_l0").data(), r.end.get("encoder.weight_hh_l0").data()),
                what + ": encoder.weight_hh_l0 trained");
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
            double worst = TrainTestSupport.assertLossCurveFollows(backend + " " + c.kind(), ref.loss, dev.loss, Seq2SeqDeviceTrainingTest.TOL);
            assertTrue(ref.loss[STEPS - 1] < ref.loss[0], c.kind() + ": the reference's loss did not fall " + Arrays.toString(ref.loss));
            System.out.printf("%s seq2seq %s max rel loss diff over %d steps %.3g%n", backend, c.kind(), STEPS, worst);
            if (c == FROZEN) {
                frozenStay("reference", ref);
                frozenStay(backend, dev);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void frozenStateIsNeverAllocatedAndTrafficIsUnchanged(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long[] held = new long[2];
        long frozenElements = 0;
        OptimizerConfig[] configs = {FROZEN.toBuilder().frozen(ParamRule.none()).build(), FROZEN};
        for (int k = 0; k < 2; k++) {
            try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
                Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, configs[k], SamplingSchedule.constant(1), 9);
                if (k == 1) {
                    for (Map.Entry<String, Tensor> e : m.parameters().values().entrySet()) {
                        if (FROZEN_RULE.matches(e.getKey(), e.getValue().shape())) frozenElements += e.getValue().size();
                    }
                }
                long before = be.memoryInUse();
                trainer.step(batch(0));   // the device values, gradients and optimizer state come with the first step
                held[k] = be.memoryInUse() - before;
            }
        }
        // Adam's two moments of every frozen element, and the one partial-norm slot of the source embedding's own run.
        assertEquals(2L * Float.BYTES * frozenElements + Float.BYTES, held[0] - held[1],
                backend + ": device bytes the frozen parameters' state would take");
        for (OptimizerConfig c : CONFIGS) {
            try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
                Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, c, SamplingSchedule.constant(1), 9);
                for (int s = 0; s < 3; s++) {
                    Seq2SeqBatch b = batch(s);
                    Traffic before = be.traffic();
                    trainer.step(b);
                    Traffic d = be.traffic().minus(before);
                    if (s == 0) continue;
                    assertEquals(4L * (b.source().length + b.target().length), d.bytesToDevice(), backend + " " + c.kind() + ": bytes up at step " + s);
                    assertEquals(Float.BYTES, d.bytesToHost(), backend + " " + c.kind() + ": bytes down at step " + s);
                    assertEquals(1, d.blockingWaits(), backend + " " + c.kind() + ": blocking waits at step " + s);
                }
            }
        }
    }

    /** The plain constructor keeps working: an Adam or an Sgd made from a configuration brings its groups. */
    @Test
    void theOptimizerConstructorTakesTheConfigurationOfAnAdamOrSgd() {
        try (Backend rb = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(config(), rb, 5)) {
            Seq2SeqTrainer plain = new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1), 0, 9);
            assertEquals(OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 0.01).build(), plain.optimizerConfig());
            Seq2SeqTrainer grouped = new Seq2SeqTrainer(m, new Sgd(SGD_NESTEROV), SamplingSchedule.constant(1), 2.0, 9);
            assertEquals(SGD_NESTEROV.withClipNorm(2.0), grouped.optimizerConfig());
            assertEquals(null, new Seq2SeqTrainer(m, new Sgd(0.1, 0.9), SamplingSchedule.constant(1), 1, 9).optimizerConfig(),
                    "a plain Sgd (decoupled decay) has no configuration and steps on the host");
            Seq2SeqTrainer fromConfig = new Seq2SeqTrainer(m, FROZEN, SamplingSchedule.constant(1), 9);
            assertEquals(FROZEN, fromConfig.optimizerConfig());
            assertTrue(fromConfig.optimizer() instanceof Adam);
        }
    }
}
