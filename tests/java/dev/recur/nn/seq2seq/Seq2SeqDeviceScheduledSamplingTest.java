package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.seq2seq.Seq2SeqDeviceShapesTest.Shape;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.recur.nn.seq2seq.Seq2SeqDeviceShapesTest.base;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.TOL;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Seq2SeqTrainer} with scheduled sampling (teacher forcing below 1) on the device: the decoder runs step by
 * step there and {@code scheduled_feed} chooses each input with the host path's coins, so the loss curve follows the
 * float64 reference's (the host path, {@link Seq2Seq#forwardBackward} with the same probability and seed) for a
 * constant probability of 0.5 and a decaying schedule, on the demo's model, an LSTM/Luong-general shape, a shape
 * without attention, a Bahdanau shape and the demo's model with dropout in the encoder and decoder (the device's
 * dropout masks are the host's: same seeds, same per-step decoder calls). Runs are bit-identical, a step moves the ids
 * in and the 4-byte loss out with at most 2 waits, and nothing leaks.
 */
class Seq2SeqDeviceScheduledSamplingTest {
    static final int STEPS = 30;

    static List<Shape> shapes() {
        return List.of(
                new Shape("demo: gru 1x8 bi -> gru 1x16, linear-tanh, luong dot", Seq2SeqDeviceTrainingTest.config()),
                new Shape("lstm 2x8 bi -> lstm 2x16, linear-tanh (h and c), luong general",
                        base().encoder(CellType.LSTM, 8, 2, true).decoder(CellType.LSTM, 16, 2)
                                .attention(AttentionStyle.LUONG, AttentionScore.GENERAL).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("gru 2x8 bi -> gru 1x16, linear-tanh, no attention",
                        base().encoder(CellType.GRU, 8, 2, true).decoder(CellType.GRU, 16, 1)
                                .attention(AttentionStyle.NONE, null).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("lstm 1x16 -> gru 1x16, sum, bahdanau dot",
                        base().encoder(CellType.LSTM, 16, 1, false).decoder(CellType.GRU, 16, 1)
                                .attention(AttentionStyle.BAHDANAU, AttentionScore.DOT).bridge(Bridge.SUM).build()),
                new Shape("demo with dropout: gru 2x8 bi (input 0.1, between layers 0.2) -> gru 2x16 (recurrent 0.2, between 0.2)",
                        base().encoder(RnnConfig.builder(CellType.GRU, 8, 8).layers(2).bidirectional(true).inputDropout(0.1).dropout(0.2).build())
                                .decoder(RnnConfig.builder(CellType.GRU, 8, 16).layers(2).recurrentDropout(0.2).dropout(0.2).build())
                                .attention(AttentionStyle.LUONG, AttentionScore.DOT).bridge(Bridge.LINEAR_TANH).build()));
    }

    /** A constant 0.5 and a linear decay from 1 to 0.1 (1 at step 0: the first step is teacher-forced). */
    static List<String> schedules() {
        return List.of("constant 0.5", "linear 1 - 0.03 i, min 0.1");
    }

    static SamplingSchedule schedule(String name) {
        return name.startsWith("constant") ? SamplingSchedule.constant(0.5) : SamplingSchedule.linear(1, 0.03, 0.1);
    }

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        for (String be : DeviceRows.NAMES) for (Shape s : shapes()) for (String sc : schedules()) list.add(Arguments.of(be, s, sc));
        return list.stream();
    }

    static double[] train(Seq2Seq m, SamplingSchedule schedule, int steps) {
        Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), schedule, 5.0, 9);
        double[] loss = new double[steps];
        for (int s = 0; s < steps; s++) loss[s] = trainer.step(Seq2SeqDeviceTrainingTest.batch(s)).loss();
        return loss;
    }

    private static final Map<String, double[]> REFERENCE = new HashMap<>();

    /** The float64 host path's curve (the same for every device backend, so computed once). */
    static synchronized double[] reference(Shape shape, String schedule) {
        return REFERENCE.computeIfAbsent(shape.name() + "|" + schedule, k -> {
            try (Backend rb = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(shape.config(), rb, 5)) {
                return train(m, schedule(schedule), STEPS);
            }
        });
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void lossCurveFollowsTheFloat64Reference(String backend, Shape shape, String schedule) {
        DeviceBackend be = DeviceRows.backend(backend);
        double[] ref = reference(shape, schedule), dev, forced;
        try (Seq2Seq m = Seq2Seq.create(shape.config(), be, 5)) {
            dev = train(m, schedule(schedule), STEPS);
        }
        // The coins matter: teacher forcing throughout gives another curve.
        try (Seq2Seq m = Seq2Seq.create(shape.config(), be, 5)) {
            forced = train(m, SamplingSchedule.constant(1), STEPS);
        }
        double apart = 0;
        for (int s = 0; s < STEPS; s++) apart = Math.max(apart, Math.abs(forced[s] - dev[s]));
        assertTrue(apart > 1e-3, backend + " " + shape + " " + schedule + ": the curve equals teacher forcing's (max diff " + apart + ")");
        double worst = TrainTestSupport.assertLossCurveFollows(backend + " " + shape + " " + schedule, ref, dev, TOL);
        System.out.printf("%s %s, %s: max rel loss diff over %d steps %.3g (first %.4f last %.4f; teacher forcing apart by %.3g)%n",
                backend, shape, schedule, STEPS, worst, ref[0], ref[STEPS - 1], apart);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void bitIdenticalRunsIdsInLossOutNoLeaks(String backend, Shape shape, String schedule) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        double[][] loss = new double[2][];
        Map<String, Tensor>[] params = new Map[2];
        for (int run = 0; run < 2; run++) {
            try (Seq2Seq m = Seq2Seq.create(shape.config(), be, 5)) {
                Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), schedule(schedule), 5.0, 9);
                loss[run] = new double[5];
                for (int s = 0; s < 5; s++) {
                    Seq2SeqBatch b = Seq2SeqDeviceTrainingTest.batch(s);
                    Traffic before = be.traffic();
                    loss[run][s] = trainer.step(b).loss();
                    Traffic d = be.traffic().minus(before);
                    if (s > 0) {
                        long ids = 4L * (b.source().length + b.target().length);
                        assertEquals(ids, d.bytesToDevice(), backend + " " + shape + ": step " + s + " bytes uploaded (the ids)");
                        assertTrue(d.bytesToHost() <= 4, backend + " " + shape + ": step " + s + " downloaded " + d.bytesToHost());
                        assertTrue(d.blockingWaits() <= 2, backend + " " + shape + ": step " + s + " waited " + d.blockingWaits());
                    }
                }
                params[run] = m.parameters().snapshot();
                // The host forward over the pulled parameters flips the device's coins: the same loss.
                Seq2SeqBatch b = Seq2SeqDeviceTrainingTest.batch(5);
                double tf = schedule(schedule).teacherForcing(5);
                double host = m.loss(b, tf, 9 + 5).loss();
                double next = trainer.step(b).loss();
                assertEquals(host, next, 1e-5 * Math.max(1, host), backend + " " + shape + ": host loss and device step loss at tf " + tf);
            }
        }
        assertArrayEquals(loss[0], loss[1], 0.0, backend + " " + shape + ": losses of two runs");
        for (String n : params[0].keySet()) {
            assertArrayEquals(params[0].get(n).data(), params[1].get(n).data(), 0.0, backend + " " + shape + ": " + n + " after two runs");
        }
        assertEquals(start, be.memoryInUse(), backend + " " + shape + ": device memory in use after closing the models");
    }
}
