package dev.recur.nn.lm;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.config.CellType;
import dev.recur.device.DeviceRows;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.DecoderState;
import dev.recur.nn.decode.DeviceDecoding;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.decode.Greedy;
import dev.recur.nn.decode.StepModel;
import dev.recur.nn.layers.Activations;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A {@link LanguageModel}'s inference on every device backend: its {@link LanguageModel#deviceStepModel} follows the
 * host {@link LanguageModel#stepModel} (several rows per prompt, rows reordered between steps, LSTM and GRU, two
 * layers, prompts of one token); device greedy gives the host's tokens; device sampling is reproducible and keyed by
 * its seed; the device evaluation ({@link LanguageModel#meanLoss}, {@link LanguageModel#streamLoss}, also in chunks)
 * gives the host's loss; and the traffic: generation uploads the prompts (and start tokens) and downloads the tokens,
 * evaluation uploads the ids (and targets) and downloads 4 bytes with one wait, over the open trainer's parameters
 * without pulling them.
 */
class LanguageModelDeviceTest {
    static final int V = LanguageModelTrainerTest.V;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** A model trained a few steps on the device (so that its predictions are not flat), trainer closed. */
    static LanguageModel trained(DeviceBackend be, CellType cell) {
        LanguageModel m = LanguageModelTrainerTest.model(be, cell);
        LanguageModelTrainerTest.train(m, 6);
        return m;
    }

    static List<int[]> prompts() {
        SplittableRandom r = new SplittableRandom(9);
        List<int[]> p = new ArrayList<>();
        p.add(new int[] {5});   // nothing to read before the start token: a zero state
        for (int i = 0; i < 3; i++) p.add(r.ints(r.nextInt(2, 9), 1, V).toArray());
        return p;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void stepModelFollowsTheHostStepModel(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        for (CellType cell : new CellType[] {CellType.LSTM, CellType.GRU}) {
            try (LanguageModel m = trained(be, cell)) {
                List<int[]> prompts = prompts();
                int k = 3, n = prompts.size() * k;
                SplittableRandom rnd = new SplittableRandom(4);
                StepModel host = m.stepModel(prompts);
                DecoderState state = host.start(k);
                try (DeviceStepModel dev = m.deviceStepModel(prompts);
                     DeviceTensor tok = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, n);
                     DeviceTensor parents = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, n)) {
                    assertEquals(null, dev.attention(), "a language model has no attention");
                    dev.start(k);
                    assertEquals(n, dev.rows(), backend + ": rows");
                    int[] tokens = new int[n];
                    int[] last = LanguageModel.lastTokens(prompts);
                    for (int r = 0; r < n; r++) tokens[r] = last[r / k];
                    for (int step = 0; step < 4; step++) {
                        StepModel.Step hs = host.step(tokens, state);
                        be.upload(tokens, 0, tok.buffer(), 0, n);
                        float[] logits = dev.step(tok.buffer()).toFloatArray();
                        double[] hl = hs.logits().data();
                        assertEquals(hl.length, logits.length, "logits [rows, V]");
                        for (int i = 0; i < hl.length; i++) {
                            assertEquals(hl[i], logits[i], 2e-4 * Math.max(1, Math.abs(hl[i])),
                                    backend + " " + cell + ": logit " + i + " at step " + step);
                        }
                        int[] par = new int[n];
                        for (int r = 0; r < n; r++) par[r] = (r / k) * k + rnd.nextInt(k);
                        state = hs.next().select(par);
                        be.upload(par, 0, parents.buffer(), 0, n);
                        dev.select(parents.buffer());
                        for (int r = 0; r < n; r++) tokens[r] = rnd.nextInt(1, V);
                    }
                }
            }
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the models");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void greedyGivesTheHostTokensAndSamplingIsReproducible(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (LanguageModel m = trained(be, CellType.LSTM)) {
            List<int[]> prompts = prompts();
            int len = 12;
            List<int[]> dev = m.greedy(prompts, len);
            Decoded host = Greedy.decode(m.stepModel(prompts), LanguageModel.lastTokens(prompts), -1, len);
            for (int i = 0; i < prompts.size(); i++) {
                assertEquals(Arrays.toString(host.tokens().get(i)), Arrays.toString(dev.get(i)), backend + ": greedy tokens of prompt " + i);
            }
            // With details: the untempered log-probabilities of the greedy path, as the host sums them.
            try (DeviceStepModel dm = m.deviceStepModel(prompts)) {
                Decoded d = DeviceDecoding.greedy(dm, LanguageModel.lastTokens(prompts), -1, len, true);
                for (int i = 0; i < prompts.size(); i++) {
                    assertEquals(host.logProb()[i], d.logProb()[i], 1e-4 * Math.max(1, Math.abs(host.logProb()[i])), backend + ": greedy logProb " + i);
                }
            }
            List<int[]> a = m.sample(prompts, len, 1.0, 42), again = m.sample(prompts, len, 1.0, 42), other = m.sample(prompts, len, 1.0, 43);
            for (int i = 0; i < prompts.size(); i++) {
                assertEquals(Arrays.toString(a.get(i)), Arrays.toString(again.get(i)), backend + ": same seed, prompt " + i);
                assertEquals(len, a.get(i).length, "no end token: every row runs to the length");
            }
            assertNotEquals(flat(a), flat(other), backend + ": another seed draws another text");
            // A temperature near 0 samples the argmax: the sampler reads the same logits greedy does; so does top-1.
            assertEquals(flat(dev), flat(m.sample(prompts, len, 1e-4, 7)), backend + ": T -> 0 is greedy");
            try (DeviceStepModel dm = m.deviceStepModel(prompts)) {
                int[] starts = LanguageModel.lastTokens(prompts);
                assertEquals(flat(dev), flat(DeviceDecoding.sample(dm, starts, -1, len, 1.5, 1, 7, false).tokens()), backend + ": top-1 is greedy");
                List<int[]> top5 = DeviceDecoding.sample(dm, starts, -1, len, 1.5, 5, 7, false).tokens();
                assertEquals(flat(top5), flat(DeviceDecoding.sample(dm, starts, -1, len, 1.5, 5, 7, false).tokens()), backend + ": top-5 reproducible");
                assertTrue(assertThrows(IllegalArgumentException.class, () -> DeviceDecoding.sample(dm, starts, -1, len, 1, -1, 7, false))
                        .getMessage().contains("topK"));
            }
            // Sampling with details: each row's logProb is the sum of its tokens' untempered log-probabilities, which
            // the host step model recomputes for the same tokens.
            try (DeviceStepModel dm = m.deviceStepModel(prompts)) {
                Decoded d = DeviceDecoding.sample(dm, LanguageModel.lastTokens(prompts), -1, len, 0.8, 5, true);
                StepModel hm = m.stepModel(prompts);
                DecoderState st = hm.start(1);
                int[] tok = LanguageModel.lastTokens(prompts);
                double[] lp = new double[prompts.size()];
                for (int s = 0; s < len; s++) {
                    StepModel.Step hs = hm.step(tok, st);
                    double[] logp = Activations.logSoftmax(hs.logits()).data();
                    for (int i = 0; i < tok.length; i++) {
                        tok[i] = d.tokens().get(i)[s];
                        lp[i] += logp[i * V + tok[i]];
                    }
                    st = hs.next();
                }
                for (int i = 0; i < lp.length; i++) assertEquals(lp[i], d.logProb()[i], 1e-4 * Math.max(1, Math.abs(lp[i])), backend + ": sample logProb " + i);
            }
        }
    }

    private static String flat(List<int[]> l) {
        StringBuilder b = new StringBuilder();
        for (int[] a : l) b.append(Arrays.toString(a));
        return b.toString();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void deviceEvaluationGivesTheHostLoss(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        int t = LanguageModelTrainerTest.T, b = LanguageModelTrainerTest.B;
        for (CellType cell : new CellType[] {CellType.LSTM, CellType.GRU}) {
            try (LanguageModel m = trained(be, cell)) {
                int[][] batch = LanguageModelTrainerTest.batch(20);
                double host = m.loss(batch[0], batch[1], t, b, null, null, 0).loss();
                double dev = m.meanLoss(batch[0], batch[1], t, b);
                assertEquals(host, dev, 1e-5 * Math.max(1, host), backend + " " + cell + ": batch loss (padded targets skipped)");

                int[] ids = new SplittableRandom(2).ints(121, 1, V).toArray();
                int n = ids.length - 1;
                double hostStream = m.loss(Arrays.copyOfRange(ids, 0, n), Arrays.copyOfRange(ids, 1, n + 1), n, 1, null, null, 0).loss();
                assertEquals(hostStream, m.streamLoss(ids), 1e-5 * Math.max(1, hostStream), backend + " " + cell + ": stream loss");
                // In chunks of 7 time steps with the state carried on the device: the same positions, the same loss.
                try (DeviceBuffer up = be.allocate(DeviceBuffer.Type.I32, ids.length)) {
                    be.upload(ids, 0, up, 0, ids.length);
                    double chunked = LanguageModelDevice.meanLoss(m, up, 0, up, 1, n, 1, 7L * V);
                    assertEquals(hostStream, chunked, 1e-5 * Math.max(1, hostStream), backend + " " + cell + ": stream loss in chunks");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void trafficIsThePromptsAndTokensForGenerationAndTheIdsAndOneLossForEvaluation(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        int t = LanguageModelTrainerTest.T, b = LanguageModelTrainerTest.B;
        try (LanguageModel m = LanguageModelTrainerTest.model(be, CellType.LSTM)) {
            List<int[]> prompts = prompts();
            int np = prompts.size(), len = 10, longest = 0;
            for (int[] p : prompts) longest = Math.max(longest, p.length - 1);
            long promptBytes = 4L * (longest * np + np), startBytes = 4L * np, outBytes = 4L * len * np;
            int[][] batch = LanguageModelTrainerTest.batch(3);
            m.greedy(prompts, len);   // the first use uploads the weights once
            for (int round = 0; round < 2; round++) {
                Traffic before = be.traffic();
                m.greedy(prompts, len);
                expect(backend + " greedy", be.traffic().minus(before), promptBytes + startBytes, outBytes, 1);
                before = be.traffic();
                m.sample(prompts, len, 0.9, round);
                expect(backend + " sample", be.traffic().minus(before), promptBytes + startBytes, outBytes, 1);
                before = be.traffic();
                m.meanLoss(batch[0], batch[1], t, b);
                expect(backend + " meanLoss", be.traffic().minus(before), 8L * t * b, 4, 1);
                int[] ids = new SplittableRandom(round).ints(200, 1, V).toArray();
                before = be.traffic();
                m.streamLoss(ids);
                expect(backend + " streamLoss", be.traffic().minus(before), 4L * ids.length, 4, 1);
            }
            // With a device trainer open, generation and evaluation read its parameters in place: nothing is pulled to
            // the host, and what they compute is the model after the step.
            try (LanguageModelTrainer tr = m.trainer(LanguageModelTrainer.Config.adam(0.03, 1.0))) {
                tr.step(batch[0], batch[1], t, b, 0);
                Traffic before = be.traffic();
                double dev = m.meanLoss(batch[0], batch[1], t, b);
                expect(backend + " meanLoss with a trainer", be.traffic().minus(before), 8L * t * b, 4, 1);
                before = be.traffic();
                List<int[]> g = m.greedy(prompts, len);
                expect(backend + " greedy with a trainer", be.traffic().minus(before), promptBytes + startBytes, outBytes, 1);
                double host = m.loss(batch[0], batch[1], t, b, null, null, 0).loss();   // pulls the parameters
                assertEquals(host, dev, 1e-5 * Math.max(1, host), backend + ": device loss after a trainer step");
                Decoded hg = Greedy.decode(m.stepModel(prompts), LanguageModel.lastTokens(prompts), -1, len);
                assertEquals(flat(hg.tokens()), flat(g), backend + ": device greedy after a trainer step");
            }
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    private static void expect(String what, Traffic d, long up, long down, long waits) {
        assertEquals(up, d.bytesToDevice(), what + ": bytes up");
        assertEquals(down, d.bytesToHost(), what + ": bytes down");
        assertEquals(waits, d.blockingWaits(), what + ": blocking waits");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badPromptsAreRefused(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (LanguageModel m = LanguageModelTrainerTest.model(be, CellType.GRU)) {
            assertThrows(IllegalArgumentException.class, () -> m.deviceStepModel(List.of()));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.deviceStepModel(List.of(new int[0])))
                    .getMessage().contains("prompt 0 is empty"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.deviceStepModel(List.of(new int[] {1, V})))
                    .getMessage().contains("must be in [0, " + V + ")"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.sample(List.of(new int[] {1}), 3, 0, 1))
                    .getMessage().contains("temperature"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.streamLoss(new int[] {1}))
                    .getMessage().contains("at least 2 tokens"));
        }
    }
}
