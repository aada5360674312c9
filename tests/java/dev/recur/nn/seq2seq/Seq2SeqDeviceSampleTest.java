package dev.recur.nn.seq2seq;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.device.DeviceRows;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.DecoderState;
import dev.recur.nn.decode.Sampler;
import dev.recur.nn.decode.StepModel;
import dev.recur.nn.layers.Activations;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Seq2Seq#sample} on the device: reproducible for a seed and keyed by it, greedy's tokens as the temperature
 * goes to 0, each row's log-probability the host's for its tokens (teacher-forced through the host step model), cut
 * at the end token, with the source ids up and the results down in one wait; and the host {@link Sampler} where the
 * model does not run on a device.
 */
class Seq2SeqDeviceSampleTest {
    static final int V = Seq2SeqDeviceTrainingTest.V, BOS = Seq2SeqDeviceTrainingTest.BOS, EOS = Seq2SeqDeviceTrainingTest.EOS;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static List<int[]> sources() {
        List<int[]> sources = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(99);
        for (int i = 0; i < 12; i++) sources.add(rnd.ints(rnd.nextInt(2, 7), 3, V).toArray());
        return sources;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void sampleOnTheDevice(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        try (Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5)) {
            Seq2SeqDeviceTrainingTest.train(m, 30);
            assertTrue(m.runsOnDevice(), backend);
            List<int[]> sources = sources();
            int maxLength = 9;
            Traffic before = be.traffic();
            Decoded a = m.sample(sources, 1.0, 17, maxLength);
            Traffic d = be.traffic().minus(before);
            Decoded again = m.sample(sources, 1.0, 17, maxLength), other = m.sample(sources, 1.0, 18, maxLength);
            assertEquals(flat(a), flat(again), backend + ": same seed, same tokens");
            assertNotEquals(flat(a), flat(other), backend + ": another seed, other tokens");
            assertEquals(flat(m.greedy(sources, maxLength)), flat(m.sample(sources, 1e-4, 3, maxLength)), backend + ": T -> 0 is greedy");

            // Each row's logProb is the untempered log-probability of its tokens (the end token included), as the host
            // step model gives for the same tokens; rows stop at the end token.
            StepModel host = m.stepModel(sources);
            DecoderState st = host.start(1);
            int b = sources.size();
            int[] tok = new int[b];
            Arrays.fill(tok, BOS);
            double[] lp = new double[b];
            boolean[] done = new boolean[b];
            for (int s = 0; s < maxLength; s++) {
                StepModel.Step hs = host.step(tok, st);
                double[] logp = Activations.logSoftmax(hs.logits()).data();
                for (int i = 0; i < b; i++) {
                    if (done[i]) continue;
                    int[] row = a.tokens().get(i);
                    tok[i] = s < row.length ? row[s] : EOS;
                    assertTrue(s < row.length || a.finished()[i], backend + ": row " + i + " ended without its end token");
                    lp[i] += logp[i * V + tok[i]];
                    if (s >= row.length) done[i] = true;
                }
                st = hs.next();
            }
            int finished = 0;
            for (int i = 0; i < b; i++) {
                assertEquals(lp[i], a.logProb()[i], 1e-4 * Math.max(1, Math.abs(lp[i])), backend + ": logProb of " + i);
                if (a.finished()[i]) finished++;
                assertEquals(sources.get(i).length > 0, a.attention().get(i).length > 0, backend + ": attention rows of " + i);
            }
            assertTrue(finished > 0, backend + ": no row reached its end token; the cut is not covered");
            int t = sources.stream().mapToInt(s -> s.length).max().orElseThrow();
            assertEquals(4L * t * b, d.bytesToDevice(), backend + ": bytes up (the padded source ids)");
            assertEquals((long) maxLength * b * (4 + 4 + 4L * t), d.bytesToHost(), backend + ": tokens, log-probabilities and attention, once");
            assertEquals(3, d.blockingWaits(), backend + ": one download each of tokens, log-probabilities, attention");
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    @Test
    void onTheReferenceBackendTheHostSamplerDraws() {
        try (ReferenceBackend be = new ReferenceBackend(); Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5)) {
            List<int[]> sources = sources();
            Decoded got = m.sample(sources, 0.7, 4, 6);
            Decoded want = new Sampler(0.7, 4).decode(m.stepModel(sources), BOS, EOS, 6);
            for (int i = 0; i < sources.size(); i++) assertArrayEquals(want.tokens().get(i), got.tokens().get(i), "tokens of " + i);
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.sample(sources, 0, 4, 6)).getMessage().contains("temperature"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.sample(sources, 1, 4, 0)).getMessage().contains("maxLength"));
        }
    }

    private static String flat(Decoded d) {
        StringBuilder s = new StringBuilder();
        for (int[] a : d.tokens()) s.append(Arrays.toString(a));
        return s.toString();
    }
}
