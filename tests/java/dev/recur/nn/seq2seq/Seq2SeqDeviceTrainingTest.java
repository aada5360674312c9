package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Seq2SeqTrainer} steps on the device for the demo's model (bidirectional GRU encoder, GRU decoder, Luong dot
 * attention, linear-tanh bridge, Adam, clipping at 5): the loss curve follows the float64 reference's for 50 steps,
 * runs are bit-identical, a step moves the batch in and the loss out, the parameters come back to the host, and the
 * device memory returns when the model closes.
 */
class Seq2SeqDeviceTrainingTest {
    static final int PAD = 0, BOS = 1, EOS = 2, V = 13, STEPS = 50, B = 8;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static Seq2SeqConfig config() {
        return Seq2SeqConfig.builder(V, V).embedding(8).encoder(CellType.GRU, 8, 1, true).decoder(CellType.GRU, 16, 1)
                .attention(AttentionStyle.LUONG, AttentionScore.DOT).bridge(Bridge.LINEAR_TANH).tokens(PAD, BOS, EOS).build();
    }

    /** Reverse the source: a task the model learns within the 50 steps. */
    static Seq2SeqBatch batch(int step) {
        SplittableRandom rnd = new SplittableRandom(500 + step);
        List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
        for (int i = 0; i < B; i++) {
            int[] s = rnd.ints(rnd.nextInt(2, 7), 3, V).toArray();
            int[] r = new int[s.length];
            for (int j = 0; j < s.length; j++) r[j] = s[s.length - 1 - j];
            src.add(s);
            tgt.add(r);
        }
        return Seq2SeqBatch.of(src, tgt, PAD, EOS);
    }

    static double[] train(Seq2Seq m, int steps) {
        return train(m, steps, 5.0, null);
    }

    /** Trains {@code steps} steps clipped at {@code clip}; {@code norms}, when given, gets the host path's norms. */
    static double[] train(Seq2Seq m, int steps, double clip, double[] norms) {
        Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1), clip, 9);
        double[] loss = new double[steps];
        for (int s = 0; s < steps; s++) {
            loss[s] = trainer.step(batch(s)).loss();
            if (norms != null) norms[s] = trainer.lastGradNorm();
        }
        return loss;
    }

    /** The demo's clipping (5.0, never reached by this model's gradients) and 0.3, reached in nearly every step. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void lossCurveFollowsTheFloat64ReferenceFor50Steps(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (double clip : new double[] {5.0, 0.3}) {
            double[] ref, norms = new double[STEPS];
            try (Backend rb = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(config(), rb, 5)) {
                ref = train(m, STEPS, clip, norms);
            }
            int clipped = 0;
            for (double n : norms) if (n > clip) clipped++;
            if (clip < 1) assertTrue(clipped >= STEPS / 2, "clip " + clip + " reached in only " + clipped + " steps: " + Arrays.toString(norms));
            double[] dev;
            try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
                dev = train(m, STEPS, clip, null);
            }
            double worst = TrainTestSupport.assertLossCurveFollows(backend + " clip " + clip, ref, dev, TOL);
            System.out.printf("%s seq2seq device step, clip %s (%d clipped): max rel loss diff over %d steps %.3g (first %.4f last %.4f)%n",
                    backend, clip, clipped, STEPS, worst, ref[0], ref[STEPS - 1]);
            assertTrue(ref[STEPS - 1] < ref[0] - 0.3, "the reference did not learn: " + Arrays.toString(ref));
        }
    }

    /** The seq2seq device parity test's tolerance (float32 against float64); measured about 2e-7 here. */
    static final double TOL = 1e-5;

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void runsAreBitIdenticalAndAStepMovesTheBatchInAndTheLossOut(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        double[][] loss = new double[2][];
        Map<String, Tensor>[] params = new Map[2];
        for (int run = 0; run < 2; run++) {
            try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
                Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1), 5.0, 9);
                loss[run] = new double[6];
                for (int s = 0; s < 6; s++) {
                    Seq2SeqBatch b = batch(s);
                    Traffic before = be.traffic();
                    Seq2Seq.Loss l = trainer.step(b);
                    Traffic d = be.traffic().minus(before);
                    loss[run][s] = l.loss();
                    assertEquals(-1, l.correct(), "correct tokens are not counted unless asked");
                    if (s > 0) {
                        long ids = 4L * (b.source().length + b.target().length);
                        assertEquals(ids, d.bytesToDevice(), backend + ": step " + s + " bytes uploaded (the source and target ids)");
                        assertTrue(d.bytesToHost() <= 4, backend + ": step " + s + " downloaded " + d.bytesToHost() + " bytes");
                        assertTrue(d.blockingWaits() <= 1, backend + ": step " + s + " waited " + d.blockingWaits() + " times");
                    }
                }
                params[run] = m.parameters().snapshot();
            }
        }
        assertArrayEquals(loss[0], loss[1], 0.0, backend + ": losses of two runs");
        for (String n : params[0].keySet()) {
            assertArrayEquals(params[0].get(n).data(), params[1].get(n).data(), 0.0, backend + ": " + n + " after two runs");
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the models");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void parametersComeBackAndTheHostLossAgrees(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1), 5.0, 9).countCorrect(true);
            Map<String, Tensor> start = m.parameters().snapshot();
            for (int s = 0; s < 3; s++) trainer.step(batch(s));
            for (Map.Entry<String, Tensor> e : m.parameters().values().entrySet()) {
                assertTrue(!Arrays.equals(start.get(e.getKey()).data(), e.getValue().data()), backend + ": " + e.getKey() + " unchanged");
            }
            // The host forward of the pulled parameters and the next device step see the same model.
            Seq2SeqBatch b = batch(3);
            Seq2Seq.Loss host = m.loss(b, 1, 9 + 3);
            Seq2Seq.Loss dev = trainer.step(b);
            assertEquals(host.loss(), dev.loss(), 1e-5, backend + ": loss of the host forward and of the device step");
            assertEquals(host.correct(), dev.correct(), backend + ": counted correct tokens");
        }
    }

    /** Greedy decoding on the device against the host-side greedy decoder over the same (pulled) parameters. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void greedyOnTheDeviceMatchesTheHostDecoderAndMovesLittle(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
            train(m, 40);
            List<int[]> sources = new ArrayList<>();
            SplittableRandom rnd = new SplittableRandom(99);
            for (int i = 0; i < 20; i++) sources.add(rnd.ints(rnd.nextInt(2, 7), 3, V).toArray());
            int maxLength = 9;
            dev.recur.nn.decode.Decoded host = dev.recur.nn.decode.Greedy.decode(m.stepModel(sources), BOS, EOS, maxLength);
            Traffic before = be.traffic();
            dev.recur.nn.decode.Decoded dev = m.greedy(sources, maxLength);
            Traffic d = be.traffic().minus(before);
            int finished = 0;
            for (int i = 0; i < sources.size(); i++) {
                assertArrayEquals(host.tokens().get(i), dev.tokens().get(i), backend + ": tokens of source " + i);
                assertEquals(host.finished()[i], dev.finished()[i], backend + ": finished " + i);
                assertEquals(host.logProb()[i], dev.logProb()[i], 1e-4 * Math.max(1, Math.abs(host.logProb()[i])), backend + ": logProb " + i);
                double[][] ha = host.attention().get(i), da = dev.attention().get(i);
                assertEquals(ha.length, da.length, backend + ": attention steps of " + i);
                for (int s = 0; s < ha.length; s++) assertArrayEquals(ha[s], da[s], 1e-5, backend + ": attention of " + i + " at step " + s);
                if (dev.finished()[i]) finished++;
            }
            assertTrue(finished > 0, backend + ": no source decoded to its end token; the comparison would not cover the cut");
            int t = sources.stream().mapToInt(s -> s.length).max().orElseThrow(), b = sources.size();
            long down = (long) maxLength * b * (4 + 4 + 4L * t);
            assertEquals(4L * t * b, d.bytesToDevice(), backend + ": bytes uploaded (the padded source ids, 4 per id)");
            assertTrue(d.bytesToHost() <= down, backend + ": decoding downloaded " + d.bytesToHost() + " bytes, expected at most " + down);
            assertTrue(d.blockingWaits() <= 3, backend + ": decoding waited " + d.blockingWaits() + " times");
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    /** Asked for tokens only, the device decoder downloads the output ids and nothing else, and the tokens agree. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void greedyTokensDownloadsTheOutputIdsOnly(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
            train(m, 40);
            List<int[]> sources = new ArrayList<>();
            SplittableRandom rnd = new SplittableRandom(7);
            for (int i = 0; i < 20; i++) sources.add(rnd.ints(rnd.nextInt(2, 7), 3, V).toArray());
            int maxLength = 9, t = sources.stream().mapToInt(s -> s.length).max().orElseThrow(), b = sources.size();
            dev.recur.nn.decode.Decoded full = m.greedy(sources, maxLength);
            Traffic before = be.traffic();
            dev.recur.nn.decode.Decoded tokens = m.greedyTokens(sources, maxLength);
            Traffic d = be.traffic().minus(before);
            for (int i = 0; i < b; i++) {
                assertArrayEquals(full.tokens().get(i), tokens.tokens().get(i), backend + ": tokens of source " + i);
                assertEquals(full.finished()[i], tokens.finished()[i], backend + ": finished " + i);
            }
            assertEquals(null, tokens.logProb(), backend + ": logProb of a tokens-only decoding");
            assertEquals(null, tokens.score(), backend + ": score of a tokens-only decoding");
            assertEquals(null, tokens.attention(), backend + ": attention of a tokens-only decoding");
            assertEquals(4L * t * b, d.bytesToDevice(), backend + ": bytes uploaded (the padded source ids, 4 per id)");
            assertEquals(4L * maxLength * b, d.bytesToHost(), backend + ": bytes downloaded (the output ids, 4 per id)");
            assertTrue(d.blockingWaits() <= 3, backend + ": decoding waited " + d.blockingWaits() + " times");
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    /**
     * A source ending in the padding id cannot have its length told from the padded ids: such a batch also uploads
     * the lengths and mask, and decodes as the host decoder does; one with the padding id inside a source sends the
     * ids alone.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void aSourceEndingInThePaddingIdAlsoSendsItsLengthAndDecodesAsOnTheHost(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
            train(m, 20);
            int maxLength = 7;
            for (List<int[]> sources : List.of(List.of(new int[] {3, 4, PAD}, new int[] {5, 6, 7, 8}),
                    List.of(new int[] {3, PAD, 4}, new int[] {5, 6, 7, 8}))) {
                dev.recur.nn.decode.Decoded host = dev.recur.nn.decode.Greedy.decode(m.stepModel(sources), BOS, EOS, maxLength);
                Traffic before = be.traffic();
                dev.recur.nn.decode.Decoded got = m.greedy(sources, maxLength);
                Traffic d = be.traffic().minus(before);
                boolean endsInPad = sources.get(0)[2] == PAD;
                for (int i = 0; i < sources.size(); i++) {
                    assertArrayEquals(host.tokens().get(i), got.tokens().get(i), backend + ": tokens of source " + i + ", ends in pad " + endsInPad);
                    assertEquals(host.logProb()[i], got.logProb()[i], 1e-4 * Math.max(1, Math.abs(host.logProb()[i])), backend + ": logProb " + i);
                }
                long ids = 4L * 4 * 2;
                assertEquals(endsInPad ? ids + 4L * (2 + 2 * 4) : ids, d.bytesToDevice(), backend + ": bytes uploaded, ends in pad " + endsInPad);
            }
        }
    }

    /** A model that only decodes holds its parameters on the device once: no gradients or moments until a step. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void decodingAloneKeepsOnlyTheParameterValuesOnTheDevice(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (Seq2Seq m = Seq2Seq.create(config(), be, 5)) {
            long values = 0;
            for (Map.Entry<String, Tensor> e : m.parameters().values().entrySet()) {
                if (!e.getKey().startsWith("encoder.") && !e.getKey().startsWith("decoder.")) values += 4L * e.getValue().size();
            }
            List<int[]> sources = List.of(new int[] {3, 4, 5}, new int[] {6});
            // The host-side decoder first: whatever the networks keep on the device after their first calls is theirs.
            dev.recur.nn.decode.Greedy.decode(m.stepModel(sources), BOS, EOS, 4);
            long before = be.memoryInUse();
            m.greedy(sources, 4);
            assertEquals(values, be.memoryInUse() - before, backend + ": device bytes held after decoding");
            new Seq2SeqTrainer(m, new Adam(0.01), SamplingSchedule.constant(1), 5.0, 9).step(batch(0));
            assertTrue(be.memoryInUse() - before > 3 * values, backend + ": a step adds gradients and moments");
        }
    }
}
