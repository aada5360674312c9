package dev.recur.nn.decode;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecodingTest {
    // Tokens of the hand-built models.
    static final int BOS = 0, EOS = 1, A = 2, B = 3, X = 4, Y = 5, Z = 6, V = 7;

    static double[] dist(int... tokenThenPercent) {
        double[] p = new double[V];
        for (int i = 0; i < tokenThenPercent.length; i += 2) p[tokenThenPercent[i]] = tokenThenPercent[i + 1] / 100.0;
        return p;
    }

    /**
     * Item 0: A .6 / B .4; after A: X .35, Y .35, Z .30; after B: X .9, Y .1; then the end token.
     * Greedy takes A X (p .21); the best sequence is B X (p .36).
     * Item 1: the same with A and B swapped, so its answer is A X.
     */
    static PrefixModel trap() {
        return new PrefixModel(2, V, (item, prefix) -> {
            int a = item == 0 ? A : B, b = item == 0 ? B : A;
            if (prefix.length == 0) return dist(a, 60, b, 40);
            if (prefix.length == 1) return prefix[0] == a ? dist(X, 35, Y, 35, Z, 30) : dist(X, 90, Y, 10);
            return dist(EOS, 100);
        });
    }

    @Test
    void greedyTakesTheLocallyBestToken() {
        Decoded d = Greedy.decode(trap(), BOS, EOS, 10);
        assertArrayEquals(new int[] {A, X}, d.tokens().get(0), "item 0 greedy tokens");
        assertArrayEquals(new int[] {B, X}, d.tokens().get(1), "item 1 greedy tokens");
        assertEquals(Math.log(0.6) + Math.log(0.35), d.logProb()[0], 1e-12, "item 0 greedy log-probability");
        assertTrue(d.finished()[0] && d.finished()[1], "both items end with the end token");
    }

    @Test
    void beamSearchFindsTheKnownBestSequenceInOneBatchedCallPerStep() {
        PrefixModel m = trap();
        Decoded d = new BeamSearch(2, 0, 10).decode(m, BOS, EOS);
        assertArrayEquals(new int[] {B, X}, d.tokens().get(0), "item 0 beam tokens");
        assertArrayEquals(new int[] {A, X}, d.tokens().get(1), "item 1 beam tokens");
        assertEquals(Math.log(0.4) + Math.log(0.9), d.logProb()[0], 1e-12, "item 0 beam log-probability");
        assertEquals(Math.log(0.4) + Math.log(0.9), d.logProb()[1], 1e-12, "item 1 beam log-probability");
        assertEquals(3, m.calls, "step calls (2 tokens + end token)");
        assertEquals(4, m.maxRowsPerCall, "rows per call (2 items x 2 beams)");
    }

    /** Empty answer p .5 vs A A (p .5·.8·.8 = .32 over 3 tokens): raw score prefers the first, per-token the second. */
    @Test
    void lengthNormalisationChangesTheWinner() {
        PrefixModel m = new PrefixModel(1, V, (item, prefix) -> {
            if (prefix.length == 0) return dist(EOS, 50, A, 50);
            if (prefix.length == 1) return dist(A, 80, EOS, 20);
            return dist(EOS, 80, Z, 20);
        });
        Decoded raw = new BeamSearch(2, 0, 10).decode(m, BOS, EOS);
        assertArrayEquals(new int[] {}, raw.tokens().get(0), "alpha 0 picks the short answer");
        assertEquals(Math.log(0.5), raw.score()[0], 1e-12, "alpha 0 score");
        Decoded norm = new BeamSearch(2, 1, 10).decode(m, BOS, EOS);
        assertArrayEquals(new int[] {A, A}, norm.tokens().get(0), "alpha 1 picks the long answer");
        assertEquals((Math.log(0.5) + 2 * Math.log(0.8)) / 3, norm.score()[0], 1e-12, "alpha 1 score (mean log-prob per token)");
    }

    /** A model whose distributions are pseudo-random functions of (item, prefix). */
    static PrefixModel randomModel(int batch, long seed) {
        return new PrefixModel(batch, V, (item, prefix) -> {
            long h = seed * 31 + item;
            for (int t : prefix) h = h * 1_000_003 + t;
            SplittableRandom r = new SplittableRandom(h);
            double[] p = new double[V];
            double s = 0;
            for (int j = 0; j < V; j++) {
                p[j] = Math.exp(2 * r.nextGaussian()) * (j == BOS ? 0 : 1) + (j == EOS ? 0.1 * prefix.length : 0);
                s += p[j];
            }
            for (int j = 0; j < V; j++) p[j] /= s;
            return p;
        });
    }

    @Test
    void beamWidthOneEqualsGreedy() {
        for (long seed = 1; seed <= 5; seed++) {
            Decoded g = Greedy.decode(randomModel(6, seed), BOS, EOS, 12);
            Decoded b = new BeamSearch(1, 0, 12).decode(randomModel(6, seed), BOS, EOS);
            for (int i = 0; i < 6; i++) {
                assertArrayEquals(g.tokens().get(i), b.tokens().get(i), "seed " + seed + " item " + i + " tokens");
                assertEquals(g.logProb()[i], b.logProb()[i], 0.0, "seed " + seed + " item " + i + " log-probability");
                assertEquals(g.finished()[i], b.finished()[i], "seed " + seed + " item " + i + " finished");
            }
        }
    }

    @Test
    void widerBeamsNeverScoreWorseThanNarrowerOnes() {
        for (long seed = 1; seed <= 5; seed++) {
            Decoded w1 = new BeamSearch(1, 0, 6).decode(randomModel(4, seed), BOS, EOS);
            Decoded w8 = new BeamSearch(8, 0, 6).decode(randomModel(4, seed), BOS, EOS);
            for (int i = 0; i < 4; i++) {
                if (w1.finished()[i] && w8.finished()[i]) {
                    assertTrue(w8.logProb()[i] >= w1.logProb()[i] - 1e-12, "seed " + seed + " item " + i + ": width 8 "
                            + w8.logProb()[i] + " < width 1 " + w1.logProb()[i]);
                }
            }
        }
    }

    @Test
    void maximumLengthStopsUnfinishedHypotheses() {
        PrefixModel m = new PrefixModel(1, V, (item, prefix) -> dist(Z, 90, EOS, 10));
        Decoded g = Greedy.decode(m, BOS, EOS, 4);
        assertArrayEquals(new int[] {Z, Z, Z, Z}, g.tokens().get(0), "greedy tokens at max length");
        assertFalse(g.finished()[0], "greedy: not finished");
        Decoded b = new BeamSearch(3, 0, 4).decode(m, BOS, EOS);
        // Finished hypotheses win over unfinished ones (Z Z Z Z, p .66, never ended): the best finished one is
        // the immediate end token (p .1; Z EOS has .09, and Z Z Z EOS fell out of the beam).
        assertArrayEquals(new int[] {}, b.tokens().get(0), "beam tokens at max length");
        assertTrue(b.finished()[0], "beam: a finished hypothesis exists");
        assertEquals(Math.log(0.1), b.logProb()[0], 1e-12, "beam log-probability");
    }

    @Test
    void samplingFollowsTheTemperedDistributionAndIsSeeded() {
        int n = 20000;
        PrefixModel m = new PrefixModel(n, V, (item, prefix) -> prefix.length == 0 ? dist(A, 50, B, 30, X, 20) : dist(EOS, 100));
        for (double temp : new double[] {1.0, 2.0}) {
            Decoded d = new Sampler(temp, 42).decode(m, BOS, EOS, 5);
            int[] counts = new int[V];
            for (int[] s : d.tokens()) {
                assertEquals(1, s.length, "one sampled token before the end token");
                counts[s[0]]++;
            }
            double[] p = {0.5, 0.3, 0.2};
            int[] tok = {A, B, X};
            double z = 0;
            for (double q : p) z += Math.pow(q, 1 / temp);
            for (int i = 0; i < 3; i++) {
                double expected = Math.pow(p[i], 1 / temp) / z;
                double sd = Math.sqrt(expected * (1 - expected) / n);
                double got = counts[tok[i]] / (double) n;
                assertTrue(Math.abs(got - expected) < 4 * sd, "temperature " + temp + " token " + tok[i] + ": expected frequency "
                        + expected + ", got " + got);
            }
        }
        Decoded a = new Sampler(0.7, 9).decode(randomModel(8, 3), BOS, EOS, 10);
        Decoded b = new Sampler(0.7, 9).decode(randomModel(8, 3), BOS, EOS, 10);
        for (int i = 0; i < 8; i++) assertArrayEquals(a.tokens().get(i), b.tokens().get(i), "same seed, item " + i);
    }

    @Test
    void badArgumentsAreRefusedNamingThem() {
        var e = assertThrows(IllegalArgumentException.class, () -> new BeamSearch(0, 0, 5));
        assertTrue(e.getMessage().startsWith("width:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Sampler(0, 1));
        assertTrue(e.getMessage().startsWith("temperature:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Greedy.decode(trap(), BOS, V, 5));
        assertTrue(e.getMessage().startsWith("endToken:"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Greedy.decode(trap(), BOS, EOS, 0));
        assertTrue(e.getMessage().startsWith("maxLength:"), e.getMessage());
        assertEquals("[]", Arrays.toString(new int[0]));
    }
}
