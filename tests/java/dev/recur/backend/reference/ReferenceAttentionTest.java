package dev.recur.backend.reference;

import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.nn.attention.Attention;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import java.util.stream.Stream;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static dev.recur.nn.attention.AttentionTestSupport.random;
import static dev.recur.nn.attention.AttentionTestSupport.randomWeights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * The float64 reference attention against central finite differences of {@code sum(context * dcontext)}, for
 * every score, masked and unmasked, Hd != He and odd sizes; and its forward against hand-computed values and
 * the masking rules.
 */
class ReferenceAttentionTest {
    private static final double H = 1e-6;
    /** Central differences in float64 with h = 1e-6 are good to ~1e-9; anything near 1e-6 is a wrong derivative. */
    private static final double FD_TOL = 1e-6;

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        AttentionConfig[] cfgs = {
                AttentionConfig.dot(5), AttentionConfig.scaled(7), AttentionConfig.general(4, 7),
                AttentionConfig.general(6, 3), AttentionConfig.additive(5, 3, 7), AttentionConfig.additive(3, 6, 2)};
        for (AttentionConfig c : cfgs) {
            list.add(Arguments.of(c, 3, 2, 5, null));                      // unmasked
            list.add(Arguments.of(c, 3, 3, 5, new int[] {5, 2, 0}));       // masked, one row fully masked
            list.add(Arguments.of(c, 1, 1, 1, null));                      // single position
        }
        return list.stream();
    }

    @ParameterizedTest(name = "{0} U={1} B={2} T={3} lengths={4}")
    @MethodSource("cases")
    void gradientsMatchFiniteDifferences(AttentionConfig cfg, int u, int b, int t, int[] lengths) {
        SplittableRandom rnd = new SplittableRandom(cfg.hashCode() * 31L + u * 7L + b + (lengths == null ? 0 : 1));
        Tensor dec = random(rnd, 1.0, u, b, cfg.decoderSize());
        Tensor enc = random(rnd, 1.0, t, b, cfg.encoderSize());
        Tensor dctx = random(rnd, 1.0, u, b, cfg.encoderSize());
        Tensor mask = lengths == null ? null : Attention.maskFromLengths(lengths, t);
        AttentionWeights w = randomWeights(cfg, 11);
        String what = cfg + " lengths=" + java.util.Arrays.toString(lengths);

        try (Attention att = Attention.create(cfg, new ReferenceBackend(), w)) {
            AttentionGradients g = att.backward(dec, enc, mask, dctx);
            DoubleSupplier loss = () -> dot(att.forward(dec, enc, mask).context(), dctx);
            assertClose(what, "ddec", numeric(dec, loss), g.ddec(), FD_TOL);
            assertClose(what, "denc", numeric(enc, loss), g.denc(), FD_TOL);
            for (String name : cfg.score().weightNames()) {
                Tensor p = w.get(name);
                // The engine holds its own copy: re-upload after each perturbation.
                DoubleSupplier lw = () -> {
                    att.setWeights(w);
                    return dot(att.forward(dec, enc, mask).context(), dctx);
                };
                assertClose(what, "d" + name, numeric(p, lw), g.weight(name), FD_TOL);
            }
            assertEquals(cfg.score().weightNames().size(), g.dweights().size(), what + ": number of weight gradients");

            // dscores: the derivative of the loss through the masked softmax alone, as a function of the raw scores.
            int[] m = intMask(mask, b, t);
            Tensor scores = att.forward(dec, enc, mask).scores().copy();
            DoubleSupplier ls = () -> dot(ReferenceAttention.fromScores(scores, enc, m).context(), dctx);
            assertClose(what, "dscores", numeric(scores, ls), g.dscores(), FD_TOL);
            if (lengths != null) {
                for (int i = 0; i < u; i++)
                    for (int k = 0; k < b; k++)
                        for (int j = lengths[k]; j < t; j++) {
                            assertEquals(0.0, g.dscores().get(i, k, j), what + ": dscores at masked [" + i + "," + k + "," + j + "]");
                        }
            }
        }
    }

    static int[] intMask(Tensor mask, int b, int t) {
        int[] m = new int[b * t];
        for (int i = 0; i < m.length; i++) m[i] = mask == null ? 1 : (int) mask.data()[i];
        return m;
    }

    static double dot(Tensor a, Tensor b) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) s += a.data()[i] * b.data()[i];
        return s;
    }

    /** Central differences of {@code loss} over every element of {@code x} (perturbed in place, then restored). */
    static Tensor numeric(Tensor x, DoubleSupplier loss) {
        Tensor g = Tensor.zeros(x.shape());
        double[] d = x.data();
        for (int i = 0; i < d.length; i++) {
            double keep = d[i];
            d[i] = keep + H;
            double up = loss.getAsDouble();
            d[i] = keep - H;
            double down = loss.getAsDouble();
            d[i] = keep;
            g.data()[i] = (up - down) / (2 * H);
        }
        return g;
    }

    @Test
    void handComputedDotScores() {
        // s = [0, ln 3] -> w = [1/4, 3/4], context = 3/4 * ln 3
        Tensor dec = Tensor.of(new double[] {1.0}, 1, 1, 1);
        Tensor enc = Tensor.of(new double[] {0.0, Math.log(3)}, 2, 1, 1);
        try (Attention att = Attention.create(AttentionConfig.dot(1), new ReferenceBackend(),
                AttentionWeights.init(AttentionConfig.dot(1), 0))) {
            AttentionOutput o = att.forward(dec, enc, null);
            assertEquals(Math.log(3), o.scores().get(0, 0, 1), 1e-15, "scores[0,0,1]");
            assertEquals(0.25, o.weights().get(0, 0, 0), 1e-15, "weights[0,0,0]");
            assertEquals(0.75, o.weights().get(0, 0, 1), 1e-15, "weights[0,0,1]");
            assertEquals(0.75 * Math.log(3), o.context().get(0, 0, 0), 1e-15, "context[0,0,0]");
            // Masking position 1 leaves all the weight on position 0; its raw score is still reported.
            AttentionOutput m = att.forward(dec, enc, Tensor.of(new double[] {1, 0}, 1, 2));
            assertEquals(Math.log(3), m.scores().get(0, 0, 1), 1e-15, "masked raw scores[0,0,1]");
            assertEquals(1.0, m.weights().get(0, 0, 0), 0.0, "masked weights[0,0,0]");
            assertEquals(0.0, m.weights().get(0, 0, 1), 0.0, "masked weights[0,0,1]");
            assertEquals(0.0, m.context().get(0, 0, 0), 0.0, "masked context[0,0,0]");
        }
    }

    @Test
    void handComputedAdditiveScore() {
        // A = 2, He = Hd = 1: s = v0 tanh(w1_0 e + w2_0 d) + v1 tanh(w1_1 e + w2_1 d)
        AttentionConfig cfg = AttentionConfig.additive(1, 1, 2);
        AttentionWeights w = AttentionWeights.of(cfg, Map.of(
                "W1", Tensor.of(new double[] {0.5, -1.0}, 2, 1),
                "W2", Tensor.of(new double[] {2.0, 0.25}, 2, 1),
                "v", Tensor.of(new double[] {1.5, -0.75}, 2)));
        try (Attention att = Attention.create(cfg, new ReferenceBackend(), w)) {
            AttentionOutput o = att.forward(Tensor.of(new double[] {0.3}, 1, 1, 1), Tensor.of(new double[] {-0.7}, 1, 1, 1), null);
            double expected = 1.5 * Math.tanh(0.5 * -0.7 + 2.0 * 0.3) - 0.75 * Math.tanh(-1.0 * -0.7 + 0.25 * 0.3);
            assertEquals(expected, o.scores().get(0, 0, 0), 1e-15, "scores[0,0,0]");
            assertEquals(1.0, o.weights().get(0, 0, 0), 0.0, "weights[0,0,0] of a single position");
        }
    }

    @Test
    void maskingRules() {
        AttentionConfig cfg = AttentionConfig.general(4, 3);
        SplittableRandom rnd = new SplittableRandom(5);
        Tensor dec = random(rnd, 1, 2, 3, 4), enc = random(rnd, 1, 6, 3, 3);
        int[] lengths = {6, 1, 0};
        try (Attention att = Attention.create(cfg, new ReferenceBackend(), randomWeights(cfg, 3))) {
            AttentionOutput full = att.forward(dec, enc, null);
            AttentionOutput o = att.forward(dec, enc, Attention.maskFromLengths(lengths, 6));
            assertClose("raw scores ignore the mask", "scores", full.scores(), o.scores(), 0.0);
            for (int u = 0; u < 2; u++)
                for (int b = 0; b < 3; b++) {
                    double sum = 0;
                    for (int t = 0; t < 6; t++) {
                        double w = o.weights().get(u, b, t);
                        if (t >= lengths[b]) assertEquals(0.0, w, 0.0, "weights[" + u + "," + b + "," + t + "] masked");
                        else assertNotEquals(0.0, w, "weights[" + u + "," + b + "," + t + "] valid");
                        sum += w;
                    }
                    assertEquals(lengths[b] == 0 ? 0.0 : 1.0, sum, 1e-12, "sum of weights[" + u + "," + b + ",:]");
                }
            for (int u = 0; u < 2; u++)
                for (int h = 0; h < 3; h++) assertEquals(0.0, o.context().get(u, 2, h), 0.0, "context of a fully masked row");
        }
    }

    @Test
    void scaledAndIdentityGeneralAgreeWithDot() {
        SplittableRandom rnd = new SplittableRandom(9);
        Tensor dec = random(rnd, 1, 3, 2, 5), enc = random(rnd, 1, 4, 2, 5);
        Tensor eye = Tensor.zeros(5, 5);
        for (int i = 0; i < 5; i++) eye.set(1.0, i, i);
        ReferenceBackend be = new ReferenceBackend();
        try (Attention dot = Attention.create(AttentionConfig.dot(5), be, AttentionWeights.init(AttentionConfig.dot(5), 0));
             Attention scaled = Attention.create(AttentionConfig.scaled(5), be, AttentionWeights.init(AttentionConfig.scaled(5), 0));
             Attention general = Attention.create(AttentionConfig.general(5, 5), be,
                     AttentionWeights.of(AttentionConfig.general(5, 5), Map.of("W_a", eye)))) {
            Tensor s = dot.forward(dec, enc, null).scores();
            Tensor expectedScaled = s.copy();
            for (int i = 0; i < expectedScaled.size(); i++) expectedScaled.data()[i] /= Math.sqrt(5);
            assertClose("scaled = dot / sqrt(5)", "scores", expectedScaled, scaled.forward(dec, enc, null).scores(), 1e-14);
            assertClose("general with W_a = I", "scores", s, general.forward(dec, enc, null).scores(), 1e-14);
            assertEquals(AttentionScore.SCALED, scaled.config().score());
        }
    }
}
