package dev.recur.nn.seq2seq;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.device.DeviceRows;
import dev.recur.nn.decode.BeamSearch;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.DeviceDecoding;
import dev.recur.nn.decode.DeviceStepModel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.BOS;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.EOS;
import static dev.recur.nn.seq2seq.Seq2SeqDeviceTrainingTest.V;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Seq2Seq#beamSearch} on the device ({@link DeviceDecoding#beamSearch}) against the host {@link BeamSearch} over
 * the same trained model: widths 1 (which is also greedy), 3 and 5, length penalty 0 and 1, a maximum length every
 * answer finishes within and one that cuts most of them; the same answers, finished
 * flags, log-probabilities, scores and attention rows. Only the source ids go up and the answers come down, in at most
 * three waits; the device memory returns when the model closes.
 */
class Seq2SeqDeviceBeamSearchTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static List<int[]> sources(long seed, int count) {
        List<int[]> sources = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < count; i++) sources.add(rnd.ints(rnd.nextInt(2, 7), 3, V).toArray());
        return sources;
    }

    static void assertSame(String what, Decoded host, Decoded dev, int items, boolean attention) {
        for (int i = 0; i < items; i++) {
            assertArrayEquals(host.tokens().get(i), dev.tokens().get(i), what + ": tokens of source " + i);
            assertEquals(host.finished()[i], dev.finished()[i], what + ": finished " + i);
            assertEquals(host.logProb()[i], dev.logProb()[i], 1e-4 * Math.max(1, Math.abs(host.logProb()[i])), what + ": logProb " + i);
            assertEquals(host.score()[i], dev.score()[i], 1e-4 * Math.max(1, Math.abs(host.score()[i])), what + ": score " + i);
            if (!attention) continue;
            double[][] ha = host.attention().get(i), da = dev.attention().get(i);
            assertEquals(ha.length, da.length, what + ": attention steps of " + i);
            for (int s = 0; s < ha.length; s++) assertArrayEquals(ha[s], da[s], 1e-5, what + ": attention of " + i + " at step " + s);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void beamSearchOnTheDeviceMatchesTheHostSearchAndMovesLittle(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        try (Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5)) {
            Seq2SeqDeviceTrainingTest.train(m, 40);
            List<int[]> sources = sources(99, 20);
            int b = sources.size(), t = sources.stream().mapToInt(s -> s.length).max().orElseThrow();
            int early = 0, open = 0, differ = 0;
            Decoded greedy = m.greedy(sources, 9);
            // {width, alpha, maxLength}: 9 steps let every answer finish; 3 cut most of them (open answers compete).
            double[][] settings = {{1, 0, 9}, {1, 1, 9}, {3, 0, 9}, {3, 1, 9}, {5, 0, 9}, {5, 1, 9}, {3, 1, 3}, {5, 0, 3}};
            for (double[] setting : settings) {
                int width = (int) setting[0], maxLength = (int) setting[2];
                double alpha = setting[1];
                String what = backend + " width " + width + " alpha " + alpha + " maxLength " + maxLength;
                BeamSearch search = new BeamSearch(width, alpha, maxLength);
                Decoded host = search.decode(m.stepModel(sources), BOS, EOS);
                Traffic before = be.traffic();
                Decoded dev = m.beamSearch(sources, search);
                Traffic d = be.traffic().minus(before);
                assertSame(what, host, dev, b, true);
                assertEquals(4L * t * b, d.bytesToDevice(), what + ": bytes uploaded (the padded source ids, 4 per id)");
                assertEquals(4L * b * maxLength + 8L * b + 4L * b * maxLength * t, d.bytesToHost(),
                        what + ": bytes downloaded (the answers' ids, scores and attention)");
                assertTrue(d.blockingWaits() <= 3, what + ": decoding waited " + d.blockingWaits() + " times");

                before = be.traffic();
                Decoded tokens = m.beamSearchTokens(sources, search);
                d = be.traffic().minus(before);
                for (int i = 0; i < b; i++) {
                    assertArrayEquals(dev.tokens().get(i), tokens.tokens().get(i), what + ": tokens-only answer " + i);
                    assertEquals(dev.finished()[i], tokens.finished()[i], what + ": tokens-only finished " + i);
                }
                assertNull(tokens.logProb(), what + ": logProb of a tokens-only search");
                assertNull(tokens.score(), what + ": score of a tokens-only search");
                assertNull(tokens.attention(), what + ": attention of a tokens-only search");
                assertEquals(4L * t * b, d.bytesToDevice(), what + ": tokens-only bytes uploaded");
                assertEquals(4L * b * maxLength, d.bytesToHost(), what + ": tokens-only bytes downloaded (the answers' ids)");
                assertTrue(d.blockingWaits() <= 1, what + ": a tokens-only search waited " + d.blockingWaits() + " times");

                for (int i = 0; i < b; i++) {
                    if (dev.finished()[i] && dev.tokens().get(i).length + 1 < maxLength) early++;
                    if (!dev.finished()[i]) open++;
                    if (width == 1 && maxLength == 9) {
                        assertArrayEquals(greedy.tokens().get(i), dev.tokens().get(i), what + ": width 1 against greedy, source " + i);
                        assertEquals(greedy.logProb()[i], dev.logProb()[i], 1e-4 * Math.max(1, Math.abs(greedy.logProb()[i])),
                                what + ": width 1 against greedy's logProb, source " + i);
                    } else if (maxLength == 9 && !java.util.Arrays.equals(greedy.tokens().get(i), dev.tokens().get(i))) {
                        differ++;
                    }
                }
            }
            System.out.printf("%s device beam search: %d answers finished before the last step, %d open, %d differ from greedy%n",
                    backend, early, open, differ);
            assertTrue(early > 0, backend + ": no answer finished early; the comparison would not cover finished hypotheses");
            assertTrue(open > 0, backend + ": every answer finished; the comparison would not cover open ones");
            assertTrue(differ > 0, backend + ": every beam answer is greedy's; the comparison would not show a search");
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    /** Per-item start tokens through {@link DeviceDecoding#beamSearch} on {@link Seq2Seq#deviceStepModel}. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void startTokensPerItemMatchTheHostSearch(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        try (Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5)) {
            Seq2SeqDeviceTrainingTest.train(m, 30);
            List<int[]> sources = sources(17, 7);
            int[] starts = new int[sources.size()];
            for (int i = 0; i < starts.length; i++) starts[i] = i % 2 == 0 ? BOS : 3 + i;
            BeamSearch search = new BeamSearch(4, 0.6, 8);
            Decoded host = search.decode(m.stepModel(sources), starts, EOS);
            Decoded dev;
            try (DeviceStepModel model = m.deviceStepModel(sources)) {
                dev = DeviceDecoding.beamSearch(model, starts, EOS, search, true);
                // The same model again with another width: start(k) begins afresh.
                Decoded again = DeviceDecoding.beamSearch(model, starts, EOS, new BeamSearch(2, 0, 8), false);
                Decoded host2 = new BeamSearch(2, 0, 8).decode(m.stepModel(sources), starts, EOS);
                for (int i = 0; i < starts.length; i++) assertArrayEquals(host2.tokens().get(i), again.tokens().get(i), backend + ": width 2 answer " + i);
            }
            assertSame(backend + " per-item starts", host, dev, sources.size(), true);
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badArgumentsAreRefusedBeforeAnythingRuns(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5);
             DeviceStepModel model = m.deviceStepModel(sources(1, 2))) {
            BeamSearch s = new BeamSearch(2, 0, 4);
            int[] starts = {BOS, BOS};
            assertTrue(assertThrows(IllegalArgumentException.class, () -> DeviceDecoding.beamSearch(null, starts, EOS, s, false))
                    .getMessage().contains("model"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> DeviceDecoding.beamSearch(model, starts, EOS, null, false))
                    .getMessage().contains("search"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> DeviceDecoding.beamSearch(model, new int[] {BOS}, EOS, s, false))
                    .getMessage().contains("startTokens: expected 2 entries"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> DeviceDecoding.beamSearch(model, starts, V, s, false))
                    .getMessage().contains("endToken: expected in [0, " + V + "), got " + V));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.beamSearch(null, s)).getMessage().contains("sources"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> m.beamSearch(sources(1, 2), null)).getMessage().contains("search"));
        }
    }
}
