package dev.recur.nn.train;

import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.io.SafeTensors;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.lm.LanguageModel;
import dev.recur.nn.seq2seq.Seq2Seq;
import dev.recur.nn.seq2seq.Seq2SeqConfig;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.recur.device.TrainTestSupport.assertClose;
import static dev.recur.device.TrainTestSupport.doubles;
import static dev.recur.device.TrainTestSupport.fixture;
import static dev.recur.device.TrainTestSupport.meta;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link OptimizerConfig}'s validation and groups, {@link ParamRule#torchNoDecay()} on this code base's parameter names,
 * and the host optimizers made from a configuration against PyTorch ({@code tests/fixtures/make_train_fixtures.py}):
 * SGD with momentum, dampening and Nesterov, and AdamW over two parameter groups with {@code clip_grad_norm_} and a
 * parameter left out of the optimizer.
 */
class OptimizerConfigTest {
    static final OptimizerConfig.Kind SGD = OptimizerConfig.Kind.SGD, ADAM = OptimizerConfig.Kind.ADAM, ADAMW = OptimizerConfig.Kind.ADAMW;

    static void bad(String arg, Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e, arg);
        assertTrue(x.getMessage().startsWith(arg + ":"), "expected a message naming " + arg + ", got: " + x.getMessage());
    }

    @Test
    void badArgumentsAreRefusedNamingTheArgument() {
        bad("lr", () -> OptimizerConfig.sgd(0));
        bad("lr", () -> OptimizerConfig.adam(Double.NaN));
        bad("lr", () -> OptimizerConfig.adam(Double.POSITIVE_INFINITY));
        bad("beta1", () -> OptimizerConfig.builder(ADAM, 0.1).betas(1.0, 0.999).build());
        bad("beta2", () -> OptimizerConfig.builder(ADAM, 0.1).betas(0.9, -0.1).build());
        bad("eps", () -> OptimizerConfig.builder(ADAMW, 0.1).eps(0).build());
        bad("momentum", () -> OptimizerConfig.builder(SGD, 0.1).momentum(1.0).build());
        bad("momentum", () -> OptimizerConfig.builder(SGD, 0.1).momentum(-0.5).build());
        bad("momentum", () -> OptimizerConfig.builder(ADAM, 0.1).momentum(0.9).build());
        bad("momentum", () -> OptimizerConfig.builder(ADAMW, 0.1).nesterov(true).build());
        bad("dampening", () -> OptimizerConfig.builder(SGD, 0.1).momentum(0.9).dampening(1.5).build());
        bad("nesterov", () -> OptimizerConfig.builder(SGD, 0.1).nesterov(true).build());
        bad("nesterov", () -> OptimizerConfig.builder(SGD, 0.1).momentum(0.9).dampening(0.1).nesterov(true).build());
        bad("weightDecay", () -> OptimizerConfig.builder(SGD, 0.1).weightDecay(-1).build());
        bad("weightDecay", () -> OptimizerConfig.adamW(0.1, Double.NaN));
        bad("clipNorm", () -> OptimizerConfig.builder(SGD, 0.1).clipNorm(0).build());
        bad("clipNorm", () -> OptimizerConfig.adam(0.1).withClipNorm(-1));
        bad("kind", () -> OptimizerConfig.builder(null, 0.1).build());
        bad("frozen", () -> OptimizerConfig.builder(SGD, 0.1).frozen(null).build());
        bad("noDecay", () -> OptimizerConfig.builder(SGD, 0.1).noDecay(null).build());
        bad("scale", () -> OptimizerConfig.builder(SGD, 0.1).lrScale(ParamRule.none(), 0));
        bad("rule", () -> OptimizerConfig.builder(SGD, 0.1).lrScale(null, 2));
        bad("names", ParamRule::names);
        bad("names", () -> ParamRule.names("a", "a"));
        bad("prefixes", () -> ParamRule.prefixes("x", ""));
        bad("regex", () -> ParamRule.regex("(unclosed"));
        bad("other", () -> ParamRule.none().or(null));
        bad("config", () -> new Adam(OptimizerConfig.sgd(0.1)));
        bad("config", () -> new Sgd(OptimizerConfig.adam(0.1)));
        bad("name", () -> OptimizerConfig.adam(0.1).group(null, new int[] {1}));
    }

    @Test
    void configurationsBuiltAlikeAreEqualAndTheBuilderRoundTrips() {
        OptimizerConfig a = OptimizerConfig.builder(ADAMW, 0.01).weightDecay(0.1).noDecay(ParamRule.torchNoDecay())
                .frozen(ParamRule.prefixes("encoder.")).lrScale(ParamRule.names("output.bias"), 2).clipNorm(5).build();
        OptimizerConfig b = OptimizerConfig.builder(ADAMW, 0.01).weightDecay(0.1).noDecay(ParamRule.torchNoDecay())
                .frozen(ParamRule.prefixes("encoder.")).lrScale(ParamRule.names("output.bias"), 2).clipNorm(5).build();
        assertEquals(a, b);
        assertEquals(a, a.toBuilder().build());
        assertNotEquals(a, a.withClipNorm(Double.POSITIVE_INFINITY));
        assertFalse(a.withClipNorm(Double.POSITIVE_INFINITY).clips());
        assertEquals(new OptimizerConfig.Group(true, 0, 0), a.group("encoder.weight_ih_l0", new int[] {6, 4}));
        assertEquals(new OptimizerConfig.Group(false, 2, 0), a.group("output.bias", new int[] {5}));
        assertEquals(new OptimizerConfig.Group(false, 1, 0.1), a.group("output.weight", new int[] {5, 4}));
    }

    /** PyTorch's usual grouping over the names this code base gives: a language model's and a seq2seq model's. */
    @Test
    void torchNoDecayLeavesOutBiasesLayerNormGainsAndEmbeddings() {
        ParamRule r = ParamRule.torchNoDecay();
        try (ReferenceBackend be = new ReferenceBackend()) {
            RnnConfig rnn = RnnConfig.builder(CellType.LSTM, 4, 5).layerNorm(true).build();
            try (LanguageModel lm = LanguageModel.create(7, 4, rnn, 0, be, 1)) {
                Map<String, Tensor> v = lm.parameters().values();
                List<String> noDecay = v.keySet().stream().filter(n -> r.matches(n, v.get(n).shape())).sorted().toList();
                assertEquals(List.of("embedding.weight", "output.bias", "rnn.bias_hh_l0", "rnn.bias_ih_l0", "rnn.ln_hh_bias_l0",
                        "rnn.ln_hh_weight_l0", "rnn.ln_ih_bias_l0", "rnn.ln_ih_weight_l0"), noDecay);
            }
            Seq2SeqConfig c = Seq2SeqConfig.builder(9, 8).embedding(4).encoder(CellType.GRU, 4, 1, true).decoder(CellType.GRU, 6, 1)
                    .tokens(0, 1, 2).build();
            try (Seq2Seq m = Seq2Seq.create(c, be, 1)) {
                Map<String, Tensor> v = m.parameters().values();
                for (String n : v.keySet()) {
                    boolean want = n.endsWith("bias") || n.contains(".bias_") || n.endsWith("embedding.weight");
                    assertEquals(want, r.matches(n, v.get(n).shape()), n + " " + Arrays.toString(v.get(n).shape()));
                }
                assertTrue(r.matches("source_embedding.weight", new int[] {9, 4}));
                assertFalse(r.matches("combine.weight", new int[] {6, 14}));
            }
        }
        assertTrue(r.matches("model.word_embeddings.weight", new int[] {3, 2}));
        assertFalse(r.matches("embedding_proj.weight", new int[] {3, 2}), "a module named after embeddings is not one");
        assertTrue(ParamRule.regex("rnn\\..*_l1").matches("rnn.weight_ih_l1", new int[] {2, 2}));
        assertFalse(ParamRule.regex("rnn").matches("rnn.weight_ih_l1", new int[] {2, 2}), "regex matches the whole name");
    }

    static Parameters params(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Parameters p = new Parameters();
        p.add("layer.weight", Tensor.of(r.doubles(6, -1, 1).toArray(), 3, 2));
        p.add("layer.bias", Tensor.of(r.doubles(3, -1, 1).toArray(), 3));
        p.add("frozen.weight", Tensor.of(r.doubles(4, -1, 1).toArray(), 2, 2));
        for (String n : p.names()) {
            double[] g = p.grad(n).data();
            for (int i = 0; i < g.length; i++) g[i] = r.nextDouble(-3, 3);
        }
        return p;
    }

    /** Frozen: never updated, no state, not in the clipping norm. No decay: decoupled decay leaves it alone. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"SGD", "ADAM", "ADAMW"})
    void hostOptimizersSkipFrozenParametersAndDecayOnlyTheDecayGroup(String kind) {
        OptimizerConfig.Builder b = OptimizerConfig.builder(OptimizerConfig.Kind.valueOf(kind), 0.05).weightDecay(0.5)
                .frozen(ParamRule.names("frozen.weight")).noDecay(ParamRule.torchNoDecay()).clipNorm(1.0);
        if (kind.equals("SGD")) b.momentum(0.9).nesterov(true);
        OptimizerConfig c = b.build();
        Parameters p = params(3);
        double[] frozen = p.value("frozen.weight").data().clone(), frozenGrad = p.grad("frozen.weight").data().clone();
        double[] bias = p.value("layer.bias").data().clone();
        double counted = 0;
        for (String n : List.of("layer.weight", "layer.bias")) for (double g : p.grad(n).data()) counted += g * g;
        Optimizer opt = c.newHostOptimizer();
        assertEquals(Math.sqrt(counted), GradientClipping.clip(p, c), 1e-12, "the norm leaves out the frozen gradient");
        assertArrayEquals(frozenGrad, p.grad("frozen.weight").data(), 0.0, "the frozen gradient is not clipped");
        opt.step(p);
        assertArrayEquals(frozen, p.value("frozen.weight").data(), 0.0, "frozen values after a step");
        if (opt instanceof Adam a) {
            assertFalse(a.hasMoments("frozen.weight"), "moments of a frozen parameter");
            assertTrue(a.hasMoments("layer.weight"));
        } else {
            assertEquals(null, ((Sgd) opt).momentumBuffer(p, "frozen.weight"), "momentum buffer of a frozen parameter");
        }
        // The same step with and without weight decay: the no-decay group moves alike, the decay group does not.
        Parameters q = params(3);
        Optimizer same = c.newHostOptimizer(), noWd = c.toBuilder().weightDecay(0).build().newHostOptimizer();
        Parameters r = params(3);
        GradientClipping.clip(q, c);
        GradientClipping.clip(r, c);
        same.step(q);
        noWd.step(r);
        assertArrayEquals(r.value("layer.bias").data(), q.value("layer.bias").data(), 0.0, kind + ": a no-decay parameter ignores wd");
        assertFalse(Arrays.equals(r.value("layer.weight").data(), q.value("layer.weight").data()), kind + ": wd moves the decay group");
        assertFalse(Arrays.equals(bias, p.value("layer.bias").data()), kind + ": the bias trained");
    }

    /** {@link Sgd} made from a configuration is PyTorch's SGD (decay in the gradient, dampening, Nesterov). */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"sgd_momentum", "sgd_nesterov", "sgd_plain"})
    void sgdFromAConfigurationMatchesTorch(String name) {
        SafeTensors f = fixture(name);
        int n = (int) meta(f, "n"), steps = (int) meta(f, "steps");
        OptimizerConfig c = OptimizerConfig.builder(SGD, meta(f, "lr")).momentum(meta(f, "momentum"))
                .dampening(meta(f, "dampening")).weightDecay(meta(f, "wd")).nesterov(meta(f, "nesterov") != 0).build();
        Parameters p = new Parameters();
        p.add("w", Tensor.of(doubles(f, "p0"), n));
        double[] grads = doubles(f, "grads"), want = doubles(f, "p");
        Sgd sgd = new Sgd(c);
        for (int s = 0; s < steps; s++) {
            System.arraycopy(grads, s * n, p.grad("w").data(), 0, n);
            sgd.step(p);
            assertClose(name + " p after step " + (s + 1), Arrays.copyOfRange(want, s * n, (s + 1) * n), p.value("w").data(), 1e-12);
        }
    }

    /** The parameter-group fixture's configuration: AdamW, the no-decay group at twice the rate, one frozen tensor. */
    static OptimizerConfig groupsConfig(SafeTensors f) {
        return OptimizerConfig.builder(ADAMW, meta(f, "lr")).betas(meta(f, "beta1"), meta(f, "beta2")).eps(meta(f, "eps"))
                .weightDecay(meta(f, "wd")).noDecay(ParamRule.torchNoDecay())
                .lrScale(ParamRule.torchNoDecay(), meta(f, "no_decay_lr_scale")).frozen(ParamRule.names("frozen.weight"))
                .clipNorm(meta(f, "max_norm")).build();
    }

    static final List<String> GROUP_NAMES = List.of("layer.weight", "layer.bias", "embedding.weight", "frozen.weight");

    @Test
    void hostAdamWOverTwoGroupsWithClippingMatchesTorch() {
        SafeTensors f = fixture("groups_adamw_clip");
        OptimizerConfig c = groupsConfig(f);
        int steps = (int) meta(f, "steps");
        Parameters p = new Parameters();
        for (String n : GROUP_NAMES) p.add(n, Tensor.of(doubles(f, n + ".p0"), f.tensor(n + ".p0").shape()));
        Optimizer opt = c.newHostOptimizer();
        double[] norms = doubles(f, "total_norm");
        for (int s = 0; s < steps; s++) {
            for (String n : GROUP_NAMES) {
                int k = p.value(n).data().length;
                System.arraycopy(doubles(f, n + ".grads"), s * k, p.grad(n).data(), 0, k);
            }
            double norm = GradientClipping.clip(p, c);
            assertTrue(norm > meta(f, "max_norm"), "step " + s + ": the fixture's norm must be clipped, got " + norm);
            assertClose("total norm at step " + (s + 1), new double[] {norms[s]}, new double[] {norm}, 1e-12);
            opt.step(p);
            for (String n : GROUP_NAMES) {
                int k = p.value(n).data().length;
                assertClose(n + " after step " + (s + 1), Arrays.copyOfRange(doubles(f, n + ".p"), s * k, (s + 1) * k),
                        p.value(n).data(), 1e-12);
            }
        }
        assertArrayEquals(doubles(f, "frozen.weight.p0"), p.value("frozen.weight").data(), 0.0, "the frozen parameter");
    }
}
