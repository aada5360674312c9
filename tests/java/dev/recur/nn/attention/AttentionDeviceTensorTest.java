package dev.recur.nn.attention;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionConfig;
import dev.recur.device.DeviceRows;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.DeviceAttentionGradients;
import dev.recur.engine.DeviceAttentionOutput;
import dev.recur.engine.GradMode;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static dev.recur.nn.attention.AttentionTestSupport.random;
import static dev.recur.nn.attention.AttentionTestSupport.randomWeights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Attention on device tensors against the float64 reference on host tensors: forward, backward, parameter gradients
 * written (SET) and accumulated (ADD) into the caller's device tensors, with no host traffic inside the calls, on
 * cpu (where the calls run the shared schedule beside the fused host engine) and OpenCL; the reference through the
 * host; arguments refused by name.
 */
class AttentionDeviceTensorTest {
    static final int U = 3, B = 2, T = 5;
    static final double TOL = 1e-4;

    static AttentionConfig config(String score) {
        return switch (score) {
            case "dot" -> AttentionConfig.dot(6);
            case "general" -> AttentionConfig.general(4, 6);
            default -> AttentionConfig.additive(4, 6, 3);
        };
    }

    @ParameterizedTest
    @CsvSource({"cpu,dot", "cpu,general", "cpu,additive", "opencl,dot", "opencl,additive"})
    void deviceCallsMatchTheReferenceAndMoveNothing(String backend, String score) {
        DeviceBackend be = DeviceRows.backend(backend);
        AttentionConfig cfg = config(score);
        SplittableRandom rnd = new SplittableRandom(3);
        AttentionWeights w = randomWeights(cfg, 5);
        Tensor dec = random(rnd, 1, U, B, cfg.decoderSize()), enc = random(rnd, 1, T, B, cfg.encoderSize());
        Tensor dctx = random(rnd, 1, U, B, cfg.encoderSize());
        Tensor mask = Attention.maskFromLengths(new int[] {5, 3}, T);
        AttentionOutput refOut;
        AttentionGradients refG;
        try (Backend ref = ReferenceBackend.PROVIDER.open(); Attention a = Attention.create(cfg, ref, w)) {
            refOut = a.forward(dec, enc, mask);
            refG = a.backward(dec, enc, mask, dctx);
        }
        long before = be.memoryInUse();
        Map<String, DeviceTensor> grads = new LinkedHashMap<>();
        try (Attention att = Attention.create(cfg, be, w); DeviceTensor d = DeviceTensor.of(be, dec);
             DeviceTensor e = DeviceTensor.of(be, enc); DeviceTensor dc = DeviceTensor.of(be, dctx);
             DeviceTensor m = DeviceTensor.ofInts(be, new int[] {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, B, T)) {
            cfg.weightShapes().forEach((n, s) -> grads.put(n, DeviceTensor.zeros(be, s)));
            Traffic t0 = be.traffic();
            try (DeviceAttentionOutput o = att.forward(d, e, m);
                 DeviceAttentionGradients g = att.backward(d, e, m, dc, grads, GradMode.SET)) {
                att.backward(d, e, m, dc, grads, GradMode.ADD).close();
                assertEquals(Traffic.ZERO, be.traffic().minus(t0), backend + " " + score + ": traffic of device attention calls");
                assertClose(score, "weights", refOut.weights(), o.weights().toTensor(), TOL);
                assertClose(score, "context", refOut.context(), o.context().toTensor(), TOL);
                assertClose(score, "ddec", refG.ddec(), g.ddec().toTensor(), TOL);
                assertClose(score, "denc", refG.denc(), g.denc().toTensor(), TOL);
            }
            for (Map.Entry<String, Tensor> en : refG.dweights().entrySet()) {
                Tensor twice = en.getValue().copy();
                for (int i = 0; i < twice.data().length; i++) twice.data()[i] *= 2;
                assertClose(score, "gradient of " + en.getKey() + " (SET then ADD)", twice, grads.get(en.getKey()).toTensor(), TOL);
            }
        } finally {
            grads.values().forEach(DeviceTensor::close);
        }
        assertEquals(before, be.memoryInUse(), "device memory after closing everything");
    }

    @Test
    void theReferenceTakesDeviceTensorsThroughTheHost() {
        DeviceBackend cpu = DeviceRows.backend("cpu");
        AttentionConfig cfg = config("additive");
        SplittableRandom rnd = new SplittableRandom(4);
        AttentionWeights w = randomWeights(cfg, 6);
        Tensor dec = random(rnd, 1, U, B, cfg.decoderSize()), enc = random(rnd, 1, T, B, cfg.encoderSize());
        try (Backend ref = ReferenceBackend.PROVIDER.open(); Attention a = Attention.create(cfg, ref, w);
             DeviceTensor d = DeviceTensor.of(cpu, dec); DeviceTensor e = DeviceTensor.of(cpu, enc);
             DeviceAttentionOutput o = a.forward(d, e, null)) {
            assertClose("reference", "context", a.forward(dec, enc, null).context(), o.context().toTensor(), 1e-6);
        }
    }

    @Test
    void argumentsAreRefusedByName() {
        DeviceBackend be = DeviceRows.backend("cpu");
        AttentionConfig cfg = AttentionConfig.general(6, 6);
        try (Attention att = Attention.create(cfg, be, AttentionWeights.init(cfg, 1));
             DeviceTensor d = DeviceTensor.zeros(be, U, B, 6); DeviceTensor e = DeviceTensor.zeros(be, T, B + 1, 6);
             DeviceTensor floatMask = DeviceTensor.zeros(be, B, T)) {
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> att.forward(d, e, null));
            assertEquals("enc: expected shape [5, 2, 6], got [5, 3, 6]", x.getMessage());
            try (DeviceTensor e2 = DeviceTensor.zeros(be, T, B, 6)) {
                x = assertThrows(IllegalArgumentException.class, () -> att.forward(d, e2, floatMask));
                assertEquals("mask: expected a I32 tensor, got F32", x.getMessage());
                x = assertThrows(IllegalArgumentException.class, () -> att.backward(d, e2, null, d, Map.of(), GradMode.SET));
                assertTrue(x.getMessage().startsWith("grads: no tensor for parameter"), x.getMessage());
            }
        }
        assertTrue(List.of(DeviceBuffer.Type.values()).contains(DeviceBuffer.Type.I32));
    }
}
