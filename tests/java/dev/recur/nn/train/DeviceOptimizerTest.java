package dev.recur.nn.train;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Traffic;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport.Bufs;
import dev.recur.engine.WeightSpace;
import dev.recur.io.SafeTensors;
import dev.recur.nn.layers.Parameters;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;
import static dev.recur.device.TrainTestSupport.doubles;
import static dev.recur.device.TrainTestSupport.fixture;
import static dev.recur.device.TrainTestSupport.meta;
import static dev.recur.device.TrainTestSupport.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DeviceOptimizer} on every device backend: against PyTorch's AdamW over two parameter groups with
 * {@code clip_grad_norm_} and a parameter outside the optimizer (the committed fixture), against the host optimizers of
 * the same configuration (the float64 oracle) for SGD with momentum and Nesterov and for Adam with L2 decay, the
 * launches a layout takes, frozen values bit-identical, no state for a frozen buffer, no traffic, and its argument
 * errors.
 */
class DeviceOptimizerTest {
    /** float32 steps against float64 ones, a few steps. */
    static final double TOL = 2e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static final List<String> NAMES = OptimizerConfigTest.GROUP_NAMES;

    /**
     * The fixture's four parameters in one buffer, in its order: [layer.weight | layer.bias | embedding.weight |
     * frozen.weight]. The bias and the embedding share a group and are adjacent: one launch.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void adamWOverTwoGroupsWithClippingMatchesTorch(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SafeTensors f = fixture("groups_adamw_clip");
        OptimizerConfig c = OptimizerConfigTest.groupsConfig(f);
        int steps = (int) meta(f, "steps");
        int[] size = new int[NAMES.size()], off = new int[NAMES.size()];
        int total = 0;
        for (int i = 0; i < NAMES.size(); i++) {
            off[i] = total;
            size[i] = (int) f.tensor(NAMES.get(i) + ".p0").size();
            total += size[i];
        }
        double[] p0 = new double[total];
        for (int i = 0; i < NAMES.size(); i++) System.arraycopy(doubles(f, NAMES.get(i) + ".p0"), 0, p0, off[i], size[i]);
        long start = be.memoryInUse();
        try (Bufs b = new Bufs(be); DeviceOptimizer opt = new DeviceOptimizer(be, c)) {
            DeviceBuffer p = b.f32(p0), g = b.f32(total, 0);
            for (int i = 0; i < NAMES.size(); i++) opt.add(NAMES.get(i), f.tensor(NAMES.get(i) + ".p0").shape(), p, g, off[i], size[i]);
            // partial norms over the three trained tensors (one run), the scale, AdamW on layer.weight, on bias + embedding.
            assertEquals(4, opt.launchesPerStep(), "launches per step");
            assertEquals(2L * (off[3]), opt.stateElements(), "m and v up to the end of the last trained range");
            assertFalse(opt.hasState("frozen.weight"));
            assertTrue(opt.hasState("embedding.weight"));
            double[] norms = doubles(f, "total_norm");
            for (int s = 0; s < steps; s++) {
                double[] grad = new double[total];
                for (int i = 0; i < NAMES.size(); i++) {
                    System.arraycopy(doubles(f, NAMES.get(i) + ".grads"), s * size[i], grad, off[i], size[i]);
                }
                be.uploadDoubles(grad, 0, g, 0, total);
                Traffic before = be.traffic();
                opt.step();
                Traffic d = be.traffic().minus(before);
                assertEquals(0, d.bytesToDevice() + d.bytesToHost() + d.blockingWaits(), backend + ": a step moves nothing: " + d);
                assertClose(backend + " norm at step " + (s + 1), new double[] {norms[s]}, b.get(opt.normScalar(), 1), TOL);
                double[] got = b.get(p, total);
                for (int i = 0; i < NAMES.size(); i++) {
                    String n = NAMES.get(i);
                    assertClose(backend + " " + n + " after step " + (s + 1), Arrays.copyOfRange(doubles(f, n + ".p"), s * size[i], (s + 1) * size[i]),
                            Arrays.copyOfRange(got, off[i], off[i] + size[i]), TOL);
                }
                assertArrayEquals(Arrays.copyOfRange(p0, off[3], total), Arrays.copyOfRange(got, off[3], total), 0.0,
                        backend + ": the frozen parameter's values at step " + (s + 1));
            }
            assertEquals(steps, opt.steps());
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory after closing");
    }

    /**
     * Three host parameters, the device holding each in its own buffer: SGD with momentum and Nesterov, and Adam with L2
     * decay (PyTorch's {@code Adam}), each with a frozen tensor and a no-decay tensor, against {@link Sgd} and
     * {@link Adam} of the same configuration in float64.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void followsTheHostOptimizerOfTheSameConfiguration(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (OptimizerConfig c : List.of(
                OptimizerConfig.builder(OptimizerConfig.Kind.SGD, 0.05).momentum(0.9).nesterov(true).weightDecay(0.01)
                        .noDecay(ParamRule.torchNoDecay()).frozen(ParamRule.names("frozen.weight")).clipNorm(2.0).build(),
                OptimizerConfig.builder(OptimizerConfig.Kind.SGD, 0.05).momentum(0.8).dampening(0.3).weightDecay(0.02)
                        .frozen(ParamRule.prefixes("frozen.")).build(),
                OptimizerConfig.builder(OptimizerConfig.Kind.ADAM, 0.01).weightDecay(0.1).noDecay(ParamRule.torchNoDecay())
                        .frozen(ParamRule.names("frozen.weight")).lrScale(ParamRule.names("layer.bias"), 0.5).clipNorm(1.0).build())) {
            Parameters host = OptimizerConfigTest.params(8);
            Optimizer ref = c.newHostOptimizer();
            try (Bufs b = new Bufs(be); DeviceOptimizer opt = new DeviceOptimizer(be, c)) {
                DeviceBuffer[][] pg = new DeviceBuffer[3][];
                int i = 0;
                for (String n : host.names()) {
                    double[] v = host.value(n).data();
                    pg[i] = new DeviceBuffer[] {b.f32(v), b.f32(v.length, 0)};
                    opt.add(n, host.value(n).shape(), pg[i][0], pg[i][1], 0, v.length);
                    i++;
                }
                // two partial norms (two buffers) and the scale when clipping, one update per trained buffer
                assertEquals(c.clips() ? 2 + 1 + 2 : 2, opt.launchesPerStep(), c + ": launches");
                double[] frozen = b.get(pg[2][0], 4);
                SplittableRandom r = new SplittableRandom(4);
                for (int s = 0; s < 4; s++) {
                    i = 0;
                    for (String n : host.names()) {
                        double[] g = random(r, host.value(n).data().length, 2.0);
                        System.arraycopy(g, 0, host.grad(n).data(), 0, g.length);
                        be.uploadDoubles(g, 0, pg[i++][1], 0, g.length);
                    }
                    GradientClipping.clip(host, c);
                    ref.step(host);
                    opt.step();
                    i = 0;
                    for (String n : host.names()) {
                        double[] v = host.value(n).data();
                        assertClose(backend + " " + c.kind() + " " + n + " after step " + (s + 1), v, b.get(pg[i++][0], v.length), TOL);
                    }
                }
                assertArrayEquals(frozen, b.get(pg[2][0], 4), 0.0, backend + ": frozen values");
                assertFalse(opt.hasState("frozen.weight"));
                long state = (c.kind() == OptimizerConfig.Kind.SGD ? 1 : 2) * (6L + 3);
                assertEquals(state, opt.stateElements(), backend + " " + c.kind() + ": state of the two trained buffers only");
            }
        }
    }

    /** A weight space in one group is one launch; PyTorch's grouping splits a GRU's weights from its biases. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void aWeightSpaceInOneGroupIsOneLaunch(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        RnnConfig rnn = RnnConfig.builder(CellType.GRU, 5, 7).layers(2).build();
        try (WeightSpace p = WeightSpace.allocate(be, rnn); WeightSpace g = WeightSpace.allocate(be, rnn)) {
            try (DeviceOptimizer opt = new DeviceOptimizer(be, OptimizerConfig.adamW(0.01, 0.1)).addSpace("rnn", p, g)) {
                assertEquals(1, opt.launchesPerStep(), "uniform AdamW over the space");
            }
            try (DeviceOptimizer opt = new DeviceOptimizer(be, OptimizerConfig.adamW(0.01, 0.1).withClipNorm(1)).addSpace("rnn", p, g)) {
                assertEquals(3, opt.launchesPerStep(), "partial norms, the scale, one update");
            }
            OptimizerConfig grouped = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 0.01).weightDecay(0.1)
                    .noDecay(ParamRule.torchNoDecay()).build();
            try (DeviceOptimizer opt = new DeviceOptimizer(be, grouped).addSpace("rnn", p, g)) {
                // per layer: [weight_ih weight_hh] [bias_ih bias_hh]
                assertEquals(4, opt.launchesPerStep(), "two layers of weights then biases");
            }
            OptimizerConfig frozenFirst = OptimizerConfig.builder(OptimizerConfig.Kind.SGD, 0.1).frozen(ParamRule.regex("rnn\\..*_l0"))
                    .clipNorm(1).build();
            try (DeviceOptimizer opt = new DeviceOptimizer(be, frozenFirst).addSpace("rnn", p, g)) {
                assertEquals(3, opt.launchesPerStep(), "layer 1 alone: its norm, the scale, one update");
                assertEquals(0, opt.stateElements(), "plain SGD keeps no state");
            }
        }
    }

    static void bad(String arg, Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e, arg);
        assertTrue(x.getMessage().startsWith(arg + ":"), "expected a message naming " + arg + ", got: " + x.getMessage());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badRegistrationsAreRefusedNamingTheArgument(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        bad("backend", () -> new DeviceOptimizer(null, OptimizerConfig.sgd(0.1)));
        bad("config", () -> new DeviceOptimizer(be, null));
        try (Bufs b = new Bufs(be); DeviceOptimizer opt = new DeviceOptimizer(be, OptimizerConfig.adam(0.1))) {
            DeviceBuffer p = b.f32(10, 0), g = b.f32(10, 0), q = b.f32(10, 0), ids = b.i32(10, 0);
            opt.add("a", new int[] {2, 2}, p, g, 0, 4);
            bad("name", () -> opt.add("a", new int[] {2}, p, g, 4, 2));
            bad("name", () -> opt.add("", new int[] {2}, p, g, 4, 2));
            bad("shape", () -> opt.add("b", null, p, g, 4, 2));
            bad("shape", () -> opt.add("b", new int[] {0, 2}, p, g, 4, 0));
            bad("length", () -> opt.add("b", new int[] {3}, p, g, 4, 2));
            bad("offset", () -> opt.add("b", new int[] {2}, p, g, -1, 2));
            bad("offset", () -> opt.add("b", new int[] {2}, p, g, 3, 2));
            bad("value", () -> opt.add("b", new int[] {8}, p, g, 4, 8));
            bad("value", () -> opt.add("b", new int[] {2}, ids, g, 4, 2));
            bad("grad", () -> opt.add("b", new int[] {2}, p, null, 4, 2));
            bad("grad", () -> opt.add("b", new int[] {2}, p, q, 4, 2));
            bad("grad", () -> opt.add("b", new int[] {2}, q, q, 0, 2));
            bad("name", () -> opt.hasState("nothing"));
            bad("lr", () -> opt.setLearningRate(0));
            bad("steps", () -> opt.setSteps(-1));
            opt.step();
            assertThrows(IllegalStateException.class, () -> opt.add("b", new int[] {2}, p, g, 4, 2), "add after the first step");
        }
        try (WeightSpace p = WeightSpace.allocate(be, RnnConfig.builder(CellType.GRU, 2, 3).build());
             WeightSpace g = WeightSpace.allocate(be, RnnConfig.builder(CellType.GRU, 2, 4).build());
             DeviceOptimizer opt = new DeviceOptimizer(be, OptimizerConfig.sgd(0.1))) {
            bad("grads", () -> opt.addSpace("rnn", p, g));
            bad("prefix", () -> opt.addSpace(null, p, p));
        }
        DeviceOptimizer empty = new DeviceOptimizer(be, OptimizerConfig.sgd(0.1));
        assertThrows(IllegalStateException.class, empty::step, "a step with nothing registered");
        empty.close();
        assertThrows(IllegalStateException.class, empty::step, "a step after close");
        assertEquals(start, be.memoryInUse(), backend + ": device memory after closing");
    }
}
