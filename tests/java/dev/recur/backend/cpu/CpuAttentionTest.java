package dev.recur.backend.cpu;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionConfig;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.nn.attention.Attention;
import dev.recur.schedule.AttentionSchedule;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static dev.recur.nn.attention.AttentionTestSupport.random;
import static dev.recur.nn.attention.AttentionTestSupport.randomWeights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CpuAttention} (the cpu backend's fused per-batch-row forward and backward) against the float64
 * reference, through the {@link Attention} API, on shapes that exercise every register block and tail of its
 * products: widths and lengths off the vector length, fewer decoder steps than a block of six, masks with holes,
 * a fully masked row and no mask at all, on one thread and on two.
 */
class CpuAttentionTest {
    private static final double TOL = 1e-4;
    private static CpuBackend one, two;
    private static final Backend REFERENCE = new ReferenceBackend();

    @BeforeAll
    static void open() {
        one = CpuBackend.open(1);
        two = CpuBackend.open(2);
    }

    @AfterAll
    static void close() {
        one.close();
        two.close();
    }

    /** The fallback the model API gives the fused engine ({@code dev.recur.nn.Engines}). */
    private static Supplier<AttentionEngine> schedule(AttentionConfig cfg) {
        return () -> new AttentionSchedule(two, cfg);
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        AttentionConfig[] configs = {
                AttentionConfig.dot(19), AttentionConfig.scaled(16), AttentionConfig.general(11, 21), AttentionConfig.general(37, 8),
                AttentionConfig.additive(9, 13, 10), AttentionConfig.additive(16, 8, 37)};
        int[][] shapes = {{13, 3, 37}, {4, 2, 8}, {1, 1, 1}};
        for (AttentionConfig c : configs) {
            for (int[] s : shapes) {
                for (String mask : new String[] {"holes", "none"}) {
                    for (int threads : new int[] {1, 2}) out.add(Arguments.of(c, s[0], s[1], s[2], mask, threads));
                }
            }
        }
        return out.stream();
    }

    /** 1 everywhere except: row 0 loses every third position, the last row (when B > 1) is fully masked. */
    private static Tensor mask(String kind, int b, int t) {
        if (kind.equals("none")) return null;
        Tensor m = Tensor.full(1.0, b, t);
        for (int i = 0; i < t; i += 3) if (t > 1) m.set(0.0, 0, i);
        if (b > 1) for (int i = 0; i < t; i++) m.set(0.0, b - 1, i);
        return m;
    }

    @ParameterizedTest(name = "{0} U={1} B={2} T={3} mask={4} threads={5}")
    @MethodSource("cases")
    void matchesTheReference(AttentionConfig cfg, int u, int b, int t, String maskKind, int threads) {
        SplittableRandom rnd = new SplittableRandom(u * 1000L + b * 100L + t + threads);
        AttentionWeights w = randomWeights(cfg, 11);
        Tensor dec = random(rnd, 1.0, u, b, cfg.decoderSize());
        Tensor enc = random(rnd, 1.0, t, b, cfg.encoderSize());
        Tensor dctx = random(rnd, 1.0, u, b, cfg.encoderSize());
        Tensor mask = mask(maskKind, b, t);
        String what = cfg + " U=" + u + " B=" + b + " T=" + t + " mask=" + maskKind + " threads=" + threads;
        // One thread: through the API (small shapes stay on the caller); two: the engine itself, sent to the pool
        // whatever the size.
        int[] m = new int[b * t];
        for (int i = 0; i < m.length; i++) m[i] = mask == null ? 1 : (int) mask.data()[i];
        try (Attention ref = Attention.create(cfg, REFERENCE, w);
             Attention api = Attention.create(cfg, one, w);
             CpuAttention engine = new CpuAttention(two, cfg, schedule(cfg), 0)) {
            engine.setWeights(w);
            Cpu cpu = threads == 1 ? new Cpu(() -> api.forward(dec, enc, mask), () -> api.backward(dec, enc, mask, dctx))
                    : new Cpu(() -> engine.forward(dec, enc, m), () -> engine.backward(dec, enc, m, dctx));
            AttentionOutput e = ref.forward(dec, enc, mask), g = cpu.forward.get();
            assertClose(what, "scores", e.scores(), g.scores(), TOL);
            assertClose(what, "weights", e.weights(), g.weights(), TOL);
            assertClose(what, "context", e.context(), g.context(), TOL);
            if (mask != null && b > 1) {
                for (int i = 0; i < u; i++) {
                    for (int j = 0; j < t; j++) assertEquals(0.0, g.weights().get(i, b - 1, j), what + ": weights of the masked row");
                }
            }
            AttentionGradients eg = ref.backward(dec, enc, mask, dctx), gg = cpu.backward.get();
            assertClose(what, "dscores", eg.dscores(), gg.dscores(), TOL);
            assertClose(what, "ddec", eg.ddec(), gg.ddec(), TOL);
            assertClose(what, "denc", eg.denc(), gg.denc(), TOL);
            for (String name : eg.dweights().keySet()) assertClose(what, "d" + name, eg.weight(name), gg.weight(name), TOL);
            assertEquals(eg.dweights().keySet(), gg.dweights().keySet(), what + ": gradient names");
            // A second call reuses the scratch of the first: same numbers.
            AttentionOutput again = cpu.forward.get();
            assertClose(what, "context (second call)", g.context(), again.context(), 0.0);
        }
    }

    private record Cpu(Supplier<AttentionOutput> forward, Supplier<AttentionGradients> backward) {}

    /**
     * Shapes too big for the fused engine's int-indexed scratch go to the shared schedule, made on first use with
     * the weights last set (here forced with a threshold of 0): its results match the fused engine's, it follows
     * weights set after it was made, and closing frees its device memory.
     */
    @org.junit.jupiter.api.Test
    void theScheduleTakesOverPastTheScratchLimitWithTheLatestWeights() {
        AttentionConfig cfg = AttentionConfig.general(6, 5);
        SplittableRandom rnd = new SplittableRandom(3);
        Tensor dec = random(rnd, 1.0, 3, 2, 6), enc = random(rnd, 1.0, 4, 2, 5), dctx = random(rnd, 1.0, 3, 2, 5);
        int[] m = {1, 1, 0, 1, 1, 1, 1, 1};
        long before = two.memoryInUse();
        try (CpuAttention fused = new CpuAttention(two, cfg, schedule(cfg), 0);
             CpuAttention viaSchedule = new CpuAttention(two, cfg, schedule(cfg), 0, 0)) {
            for (long seed : new long[] {11, 12}) {
                AttentionWeights w = randomWeights(cfg, seed);
                fused.setWeights(w);
                viaSchedule.setWeights(w);
                String what = "weights of seed " + seed;
                AttentionOutput f = fused.forward(dec, enc, m), s = viaSchedule.forward(dec, enc, m);
                assertClose(what, "scores", f.scores(), s.scores(), TOL);
                assertClose(what, "context", f.context(), s.context(), TOL);
                AttentionGradients fg = fused.backward(dec, enc, m, dctx), sg = viaSchedule.backward(dec, enc, m, dctx);
                assertClose(what, "ddec", fg.ddec(), sg.ddec(), TOL);
                assertClose(what, "dW_a", fg.weight("W_a"), sg.weight("W_a"), TOL);
            }
            assertTrue(two.memoryInUse() > before, "the schedule holds its weights on the backend");
        }
        assertEquals(before, two.memoryInUse(), "device memory after closing the engines");
    }

    @org.junit.jupiter.api.Test
    void closingTwiceIsHarmlessAndUseAfterCloseThrows() {
        AttentionConfig cfg = AttentionConfig.dot(8);
        CpuAttention engine = new CpuAttention(two, cfg, schedule(cfg), CpuAttention.PARALLEL_MIN_FMAS);
        engine.setWeights(AttentionWeights.init(cfg, 1));
        engine.close();
        engine.close();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> engine.forward(Tensor.zeros(1, 1, 8), Tensor.zeros(1, 1, 8), new int[] {1}));
        assertEquals("CpuAttention: used after close()", e.getMessage());
    }
}
