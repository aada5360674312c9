package dev.recur.schedule;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionConfig;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.nn.attention.Attention;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static dev.recur.nn.attention.AttentionTestSupport.random;
import static dev.recur.nn.attention.AttentionTestSupport.randomWeights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Attention on every registered device backend (OpenCL on PoCL here) against the float64 reference:
 * forward and backward, every score, masked and unmasked, odd sizes, per tensor
 * {@code max|got - ref| <= 1e-4 * max(1, max|ref|)}. An unavailable backend is skipped with its probe's
 * reason, except OpenCL when {@code recur.ci} is {@code true}, which fails.
 */
class AttentionDeviceTest {
    static final double TOL = 1e-4;
    private static final Map<String, DeviceBackend> OPEN = new HashMap<>();

    static List<String> deviceBackends() {
        List<String> names = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) if (!p.name().equals("reference")) names.add(p.name());
        return names;
    }

    /** One backend per name for the whole class (OpenCL builds its program once per process anyway). */
    static DeviceBackend backend(String name) {
        DeviceBackend open = OPEN.get(name);
        if (open != null) return open;
        BackendProvider p = Backends.provider(name);
        BackendProvider.Availability a = p.probe();
        if (!a.available()) {
            if (name.equals("opencl") && "true".equals(System.getProperty("recur.ci"))) {
                fail("opencl unavailable with recur.ci=true (CI installs PoCL): " + a.detail());
            }
            Assumptions.abort(name + " unavailable: " + a.detail());
        }
        Backend b = p.open();
        if (!(b instanceof DeviceBackend db)) {
            b.close();
            throw new AssertionError(name + ": expected a DeviceBackend, got " + b.getClass().getName());
        }
        OPEN.put(name, db);
        return db;
    }

    @AfterAll
    static void closeBackends() {
        OPEN.values().forEach(Backend::close);
        OPEN.clear();
    }

    record Case(AttentionConfig cfg, int u, int b, int t, int[] lengths) {
        @Override
        public String toString() {
            return cfg.score().label() + " Hd=" + cfg.decoderSize() + " He=" + cfg.encoderSize() + " A=" + cfg.attentionSize()
                    + " U=" + u + " B=" + b + " T=" + t + (lengths == null ? " unmasked" : " lengths=" + java.util.Arrays.toString(lengths));
        }
    }

    static List<Case> cases() {
        List<Case> list = new ArrayList<>();
        AttentionConfig[] cfgs = {AttentionConfig.dot(9), AttentionConfig.scaled(13), AttentionConfig.general(7, 11),
                AttentionConfig.general(17, 5), AttentionConfig.additive(7, 11, 9), AttentionConfig.additive(12, 5, 3)};
        for (AttentionConfig c : cfgs) {
            list.add(new Case(c, 7, 5, 13, null));
            list.add(new Case(c, 3, 4, 9, new int[] {9, 4, 1, 0}));
            list.add(new Case(c, 1, 1, 1, null));
        }
        list.add(new Case(AttentionConfig.additive(33, 40, 37), 19, 3, 31, new int[] {31, 17, 2}));
        // Whole chunks of 8 along t (forward) and a (backward), no tails.
        list.add(new Case(AttentionConfig.additive(8, 6, 16), 4, 2, 16, new int[] {16, 8}));
        list.add(new Case(AttentionConfig.dot(64), 20, 8, 50, new int[] {50, 49, 1, 25, 50, 7, 33, 0}));
        return list;
    }

    static Stream<Arguments> backendsAndCases() {
        List<Arguments> args = new ArrayList<>();
        for (String be : deviceBackends()) for (Case c : cases()) args.add(Arguments.of(be, c));
        return args.stream();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndCases")
    void matchesReference(String backendName, Case c) {
        DeviceBackend be = backend(backendName);
        SplittableRandom rnd = new SplittableRandom(c.toString().hashCode());
        Tensor dec = random(rnd, 1.0, c.u, c.b, c.cfg.decoderSize());
        Tensor enc = random(rnd, 1.0, c.t, c.b, c.cfg.encoderSize());
        Tensor dctx = random(rnd, 1.0, c.u, c.b, c.cfg.encoderSize());
        Tensor mask = c.lengths == null ? null : Attention.maskFromLengths(c.lengths, c.t);
        AttentionWeights w = randomWeights(c.cfg, 17);
        long before = be.memoryInUse();
        AttentionOutput ro, go;
        AttentionGradients rg, gg;
        try (Attention ref = Attention.create(c.cfg, new ReferenceBackend(), w);
             Attention dev = Attention.create(c.cfg, be, w)) {
            ro = ref.forward(dec, enc, mask);
            rg = ref.backward(dec, enc, mask, dctx);
            go = dev.forward(dec, enc, mask);
            gg = dev.backward(dec, enc, mask, dctx);
        }
        assertEquals(before, be.memoryInUse(), backendName + " " + c + ": device memory after close");
        String what = backendName + " " + c;
        assertClose(what, "scores", ro.scores(), go.scores(), TOL);
        assertClose(what, "weights", ro.weights(), go.weights(), TOL);
        assertClose(what, "context", ro.context(), go.context(), TOL);
        assertClose(what, "dscores", rg.dscores(), gg.dscores(), TOL);
        assertClose(what, "ddec", rg.ddec(), gg.ddec(), TOL);
        assertClose(what, "denc", rg.denc(), gg.denc(), TOL);
        for (String name : c.cfg.score().weightNames()) assertClose(what, "d" + name, rg.weight(name), gg.weight(name), TOL);
        if (c.lengths != null) {
            // Exactly zero, not merely small: masked weights and the gradients through them.
            for (int u = 0; u < c.u; u++)
                for (int b = 0; b < c.b; b++)
                    for (int t = c.lengths[b]; t < c.t; t++) {
                        assertEquals(0.0, go.weights().get(u, b, t), 0.0, what + ": weights[" + u + "," + b + "," + t + "]");
                        assertEquals(0.0, gg.dscores().get(u, b, t), 0.0, what + ": dscores[" + u + "," + b + "," + t + "]");
                    }
        }
    }

    static Stream<String> backendNames() {
        return deviceBackends().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backendNames")
    void repeatedCreateAndCloseLeavesNoDeviceMemory(String backendName) {
        DeviceBackend be = backend(backendName);
        AttentionConfig cfg = AttentionConfig.additive(6, 5, 4);
        AttentionWeights w = AttentionWeights.init(cfg, 1);
        Tensor dec = Tensor.full(0.5, 2, 3, 6), enc = Tensor.full(0.25, 4, 3, 5);
        long start = be.memoryInUse();
        for (int i = 0; i < 200; i++) {
            try (Attention a = Attention.create(cfg, be, w)) {
                if (i % 50 == 0) a.backward(dec, enc, null, Tensor.full(1.0, 2, 3, 5));
                // The cpu engine keeps its weights on the heap; its device-side schedule is made only for shapes
                // past 2^31 elements, so an open one holds no backend memory there.
                if (!backendName.equals("cpu")) assertTrue(be.memoryInUse() > start, "an open Attention holds device memory");
            }
        }
        assertEquals(start, be.memoryInUse(), backendName + ": device memory after 200 create/close");
        // A rejected argument on a live device engine throws before anything runs, naming the argument.
        try (AttentionSchedule s = new AttentionSchedule(be, cfg);
             DeviceBuffer small = be.allocate(DeviceBuffer.Type.F32, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> s.forward(2, 3, 4, small, small, small, small, small, small));
            assertTrue(e.getMessage().startsWith("dec: expected at least 36 elements, got a buffer of 3"), e.getMessage());
            try (DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, 36); DeviceBuffer en = be.allocate(DeviceBuffer.Type.F32, 60);
                 DeviceBuffer m = be.allocate(DeviceBuffer.Type.I32, 12); DeviceBuffer sc = be.allocate(DeviceBuffer.Type.F32, 60)) {
                e = assertThrows(IllegalArgumentException.class, () -> s.forward(2, 3, 4, d, en, m, sc, sc, en));
                assertEquals("weights: expected a buffer of its own, got the same buffer as scores", e.getMessage());
            }
        }
        assertEquals(start, be.memoryInUse(), backendName + ": device memory after a rejected call");
    }
}
