package dev.recur.nn.attention;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionConfig;
import dev.recur.device.DeviceRows;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.DeviceAttentionOutput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;
import java.util.SplittableRandom;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static dev.recur.nn.attention.AttentionTestSupport.random;
import static dev.recur.nn.attention.AttentionTestSupport.randomWeights;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Attention#deviceWeights()} and {@link Attention#weightsUpdated()}: parameters written on the device (as an
 * optimizer step does) are what the device calls use at once, with nothing uploaded, and what the host-tensor calls
 * use after {@code weightsUpdated} (on cpu, whose fused host engine keeps its own copy); the reference refuses.
 */
class AttentionDeviceWeightsTest {
    static final int U = 3, B = 2, T = 5;

    @ParameterizedTest
    @CsvSource({"cpu,general", "cpu,additive", "opencl,general", "opencl,additive", "cpu,dot"})
    void weightsWrittenOnTheDeviceAreUsedByDeviceAndHostCalls(String backend, String score) {
        DeviceBackend be = DeviceRows.backend(backend);
        AttentionConfig cfg = AttentionDeviceTensorTest.config(score);
        SplittableRandom rnd = new SplittableRandom(11);
        AttentionWeights first = randomWeights(cfg, 5), second = randomWeights(cfg, 6);
        Tensor dec = random(rnd, 1, U, B, cfg.decoderSize()), enc = random(rnd, 1, T, B, cfg.encoderSize());
        AttentionOutput want;
        try (Backend ref = ReferenceBackend.PROVIDER.open(); Attention a = Attention.create(cfg, ref, second)) {
            want = a.forward(dec, enc, null);
            assertThrows(UnsupportedOperationException.class, a::deviceWeights);
            assertThrows(UnsupportedOperationException.class, a::weightsUpdated);
        }
        long before = be.memoryInUse();
        try (Attention att = Attention.create(cfg, be, first); DeviceTensor d = DeviceTensor.of(be, dec);
             DeviceTensor e = DeviceTensor.of(be, enc)) {
            att.forward(dec, enc, null);   // the host engine loaded with the first weights
            Map<String, DeviceTensor> w = att.deviceWeights();
            assertEquals(cfg.weightShapes().keySet(), w.keySet(), backend + " " + score + ": parameter names");
            for (Map.Entry<String, DeviceTensor> p : w.entrySet()) {
                assertTrue(java.util.Arrays.equals(cfg.weightShapes().get(p.getKey()), p.getValue().shape()), p.getKey() + " shape");
                p.getValue().copyFrom(second.get(p.getKey()));
            }
            Traffic t0 = be.traffic();
            att.weightsUpdated();
            try (DeviceAttentionOutput o = att.forward(d, e, null)) {
                assertEquals(Traffic.ZERO, be.traffic().minus(t0), backend + " " + score + ": weightsUpdated and a device call move nothing");
                assertClose(score, "device context", want.context(), o.context().toTensor(), 1e-4);
            }
            assertClose(score, "host context after weightsUpdated", want.context(), att.forward(dec, enc, null).context(), 1e-4);
            att.setWeights(first);
            for (Map.Entry<String, DeviceTensor> p : att.deviceWeights().entrySet()) {
                assertClose(score, "setWeights overwrites " + p.getKey(), first.get(p.getKey()), p.getValue().toTensor(), 1e-6);
            }
        }
        assertEquals(before, be.memoryInUse(), backend + " " + score + ": the views own nothing; closing frees the rest");
    }

    @Test
    void closedAttentionRefuses() {
        DeviceBackend be = DeviceRows.backend("cpu");
        AttentionConfig cfg = AttentionConfig.general(4, 6);
        Attention att = Attention.create(cfg, be, randomWeights(cfg, 1));
        att.close();
        assertThrows(IllegalStateException.class, att::deviceWeights);
        assertThrows(IllegalStateException.class, att::weightsUpdated);
    }
}
