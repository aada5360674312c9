package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.DecoderState;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.decode.Greedy;
import dev.recur.nn.decode.StepModel;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.BOS;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.EOS;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.PAD;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.TOL;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.V;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The model shapes beyond the demo's that {@link Seq2SeqTrainer} and the device decoder run on the device: LSTM
 * encoders and decoders (the decoder's cell state; the cell-state bridge between two LSTMs), several layers on either
 * side (a deeper decoder shares the encoder's first layer; a shallower one takes the top layers), the sum and zero
 * bridges, no attention, Luong and Bahdanau attention (the per-step loop and its backward through time), and the
 * scaled, general and additive scores (the last two training their parameters on the device). For each: the loss curve follows the float64 reference's, runs are bit-identical, a step moves the ids in
 * and the loss out, every parameter comes back to the host, and greedy and k-rows-with-select decoding follow the
 * host decoder; nothing leaks.
 */
class Seq2SeqDeviceShapesTest {
    static final int STEPS = 40;

    /** A named shape; every one trains on the device. */
    record Shape(String name, Seq2SeqConfig config) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Seq2SeqConfig.Builder base() {
        return Seq2SeqConfig.builder(V, V).embedding(8).tokens(PAD, BOS, EOS);
    }

    static List<Shape> shapes() {
        return List.of(
                new Shape("lstm 2x8 bi -> lstm 2x16, linear-tanh (h and c), luong dot",
                        base().encoder(CellType.LSTM, 8, 2, true).decoder(CellType.LSTM, 16, 2)
                                .attention(AttentionStyle.LUONG, AttentionScore.DOT).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("lstm 2x16 -> lstm 3x16 (deeper), sum (h and c), luong scaled",
                        base().encoder(CellType.LSTM, 16, 2, false).decoder(CellType.LSTM, 16, 3)
                                .attention(AttentionStyle.LUONG, AttentionScore.SCALED).bridge(Bridge.SUM).build()),
                new Shape("gru 2x8 bi -> gru 1x16 (shallower), linear-tanh, no attention",
                        base().encoder(CellType.GRU, 8, 2, true).decoder(CellType.GRU, 16, 1)
                                .attention(AttentionStyle.NONE, null).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("lstm 1x8 bi -> gru 2x12, zero, luong general",
                        base().encoder(CellType.LSTM, 8, 1, true).decoder(CellType.GRU, 12, 2)
                                .attention(AttentionStyle.LUONG, AttentionScore.GENERAL).bridge(Bridge.ZERO).build()),
                new Shape("gru 1x8 bi -> lstm 1x16 (c0 = 0), linear-tanh, luong additive",
                        base().encoder(CellType.GRU, 8, 1, true).decoder(CellType.LSTM, 16, 1)
                                .attention(AttentionStyle.LUONG, AttentionScore.ADDITIVE).attentionSize(12).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("projected lstm 5/p4 bi -> lstm 2x12, linear-tanh (c width 5), luong general",
                        base().encoder(RnnConfig.builder(CellType.LSTM, 8, 5).projSize(4).bidirectional(true).build())
                                .decoder(CellType.LSTM, 12, 2).attention(AttentionStyle.LUONG, AttentionScore.GENERAL)
                                .bridge(Bridge.LINEAR_TANH).build()),
                new Shape("gru 1x8 bi -> gru 2x16, linear-tanh, bahdanau additive",
                        base().encoder(CellType.GRU, 8, 1, true).decoder(CellType.GRU, 16, 2)
                                .attention(AttentionStyle.BAHDANAU, AttentionScore.ADDITIVE).attentionSize(10).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("lstm 2x8 bi -> lstm 2x16, linear-tanh (h and c), bahdanau general",
                        base().encoder(CellType.LSTM, 8, 2, true).decoder(CellType.LSTM, 16, 2)
                                .attention(AttentionStyle.BAHDANAU, AttentionScore.GENERAL).bridge(Bridge.LINEAR_TANH).build()),
                new Shape("lstm 1x16 -> gru 1x16, sum, bahdanau dot",
                        base().encoder(CellType.LSTM, 16, 1, false).decoder(CellType.GRU, 16, 1)
                                .attention(AttentionStyle.BAHDANAU, AttentionScore.DOT).bridge(Bridge.SUM).build()));
    }

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        for (String be : DeviceRows.NAMES) for (Shape s : shapes()) list.add(Arguments.of(be, s));
        return list.stream();
    }

    @Test
    void everyShapeRunsOnADeviceBackendAndNoneOnTheReference() {
        for (Shape s : shapes()) {
            try (Seq2Seq m = Seq2Seq.create(s.config(), DeviceRows.backend("cpu"), 5)) {
                assertTrue(m.runsOnDevice(), s + " runs on the device");
            }
            try (Backend rb = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(s.config(), rb, 5)) {
                assertFalse(m.runsOnDevice(), s + " on the reference backend runs on the host");
            }
        }
    }

    static double[] train(Seq2Seq m, int steps) {
        return Seq2SeqDeviceTrainingTest.train(m, steps);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void lossCurveFollowsTheFloat64Reference(String backend, Shape shape) {
        DeviceBackend be = DeviceRows.backend(backend);
        double[] ref, dev;
        try (Backend rb = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(shape.config(), rb, 5)) {
            ref = train(m, STEPS);
        }
        try (Seq2Seq m = Seq2Seq.create(shape.config(), be, 5)) {
            assertTrue(m.runsOnDevice(), shape + " runs on the device");
            dev = train(m, STEPS);
        }
        double worst = TrainTestSupport.assertLossCurveFollows(backend + " " + shape, ref, dev, TOL);
        System.out.printf("%s %s: max rel loss diff over %d steps %.3g (first %.4f last %.4f)%n", backend, shape, STEPS, worst,
                ref[0], ref[STEPS - 1]);
        assertTrue(ref[STEPS - 1] < ref[0] - 0.3, "the reference did not learn: " + Arrays.toString(ref));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void bitIdenticalRunsIdsInLossOutAndEveryParameterComesBack(String backend, Shape shape) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        double[][] loss = new double[2][];
        Map<String, Tensor>[] params = new Map[2];
        for (int run = 0; run < 2; run++) {
            try (Seq2Seq m = Seq2Seq.create(shape.config(), be, 5)) {
                Map<String, Tensor> initial = m.parameters().snapshot();
                Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1), 5.0, 9);
                loss[run] = new double[4];
                for (int s = 0; s < 4; s++) {
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
                for (Map.Entry<String, Tensor> e : params[run].entrySet()) {
                    if (e.getKey().startsWith("bridge_c_") && shape.config().bridge() != Bridge.LINEAR_TANH) continue;
                    assertFalse(Arrays.equals(initial.get(e.getKey()).data(), e.getValue().data()),
                            backend + " " + shape + ": " + e.getKey() + " did not change on the device");
                }
                // The host forward over the pulled parameters and the next device step see the same model.
                Seq2SeqBatch b = Seq2SeqDeviceTrainingTest.batch(4);
                double host = m.loss(b, 1, 9 + 4).loss();
                double next = trainer.step(b).loss();
                assertEquals(host, next, 1e-5 * Math.max(1, host), backend + " " + shape + ": host loss and device step loss");
            }
        }
        assertArrayEquals(loss[0], loss[1], 0.0, backend + " " + shape + ": losses of two runs");
        for (String n : params[0].keySet()) {
            assertArrayEquals(params[0].get(n).data(), params[1].get(n).data(), 0.0, backend + " " + shape + ": " + n + " after two runs");
        }
        assertEquals(start, be.memoryInUse(), backend + " " + shape + ": device memory in use after closing the models");
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void greedyAndRowsWithSelectFollowTheHostDecoder(String backend, Shape shape) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        boolean attn = shape.config().style() != AttentionStyle.NONE;
        try (Seq2Seq m = Seq2Seq.create(shape.config(), be, 5)) {
            train(m, 30);
            SplittableRandom rnd = new SplittableRandom(99);
            List<int[]> sources = new ArrayList<>();
            for (int i = 0; i < 12; i++) sources.add(rnd.ints(rnd.nextInt(2, 7), 3, V).toArray());
            int maxLength = 9, t = sources.stream().mapToInt(s -> s.length).max().orElseThrow(), b = sources.size();

            Decoded host = Greedy.decode(m.stepModel(sources), BOS, EOS, maxLength);
            Traffic before = be.traffic();
            Decoded dev = m.greedy(sources, maxLength);
            Traffic d = be.traffic().minus(before);
            for (int i = 0; i < b; i++) {
                assertArrayEquals(host.tokens().get(i), dev.tokens().get(i), backend + " " + shape + ": tokens of source " + i);
                assertEquals(host.finished()[i], dev.finished()[i], backend + " " + shape + ": finished " + i);
                assertEquals(host.logProb()[i], dev.logProb()[i], 1e-4 * Math.max(1, Math.abs(host.logProb()[i])), backend + " " + shape + ": logProb " + i);
                if (attn) {
                    double[][] ha = host.attention().get(i), da = dev.attention().get(i);
                    for (int s = 0; s < ha.length; s++) assertArrayEquals(ha[s], da[s], 1e-5, backend + " " + shape + ": attention of " + i + " at " + s);
                }
            }
            if (!attn) assertNull(dev.attention(), backend + " " + shape + ": no attention rows without attention");
            assertEquals(4L * t * b, d.bytesToDevice(), backend + " " + shape + ": decoding uploaded the source ids only");
            assertTrue(d.blockingWaits() <= 3, backend + " " + shape + ": decoding waited " + d.blockingWaits() + " times");
            Traffic tb = be.traffic();
            Decoded toks = m.greedyTokens(sources, maxLength);
            Traffic td = be.traffic().minus(tb);
            assertEquals(4L * maxLength * b, td.bytesToHost(), backend + " " + shape + ": tokens-only decoding downloads the ids only");
            for (int i = 0; i < b; i++) assertArrayEquals(dev.tokens().get(i), toks.tokens().get(i), backend + " " + shape + ": tokens-only " + i);

            // k rows per source and a reordering of the rows between steps, as beam search does.
            List<int[]> few = sources.subList(0, 4);
            int k = 3, n = few.size() * k;
            StepModel hostModel = m.stepModel(few);
            DecoderState state = hostModel.start(k);
            try (DeviceStepModel dm = m.deviceStepModel(few);
                 DeviceTensor tok = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, n);
                 DeviceTensor parents = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, n)) {
                dm.start(k);
                int[] tokens = new int[n];
                Arrays.fill(tokens, BOS);
                for (int step = 0; step < 4; step++) {
                    StepModel.Step hs = hostModel.step(tokens, state);
                    be.upload(tokens, 0, tok.buffer(), 0, n);
                    float[] logits = dm.step(tok.buffer()).toFloatArray();
                    double[] hl = hs.logits().data();
                    for (int i = 0; i < hl.length; i++) {
                        assertEquals(hl[i], logits[i], 2e-4 * Math.max(1, Math.abs(hl[i])), backend + " " + shape + ": logit " + i + " at step " + step);
                    }
                    if (attn) {
                        float[] att = dm.attention().toFloatArray();
                        double[] ha = hs.attention().data();
                        for (int i = 0; i < ha.length; i++) assertEquals(ha[i], att[i], 1e-5, backend + " " + shape + ": attention " + i + " at step " + step);
                    } else {
                        assertNull(dm.attention(), backend + " " + shape + ": attention without attention");
                    }
                    int[] par = new int[n];
                    for (int r = 0; r < n; r++) par[r] = (r / k) * k + rnd.nextInt(k);
                    state = hs.next().select(par);
                    be.upload(par, 0, parents.buffer(), 0, n);
                    dm.select(parents.buffer());
                    for (int r = 0; r < n; r++) tokens[r] = rnd.nextInt(3, V);
                }
            }
        }
        assertEquals(start, be.memoryInUse(), backend + " " + shape + ": device memory in use after closing the model");
    }
}
