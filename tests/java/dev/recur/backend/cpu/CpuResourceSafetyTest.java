package dev.recur.backend.cpu;

import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Leaks;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * cpu buffers a caller forgot to close are freed after garbage collection (not only when the backend closes),
 * including buffers whose packed weight copies the backend caches; closing twice is harmless; closing the
 * backend frees what is still open.
 */
class CpuResourceSafetyTest {
    /** Runs GCs (bounded: 10 s) until the backend's memory in use is {@code expected}. */
    static void awaitMemory(String what, CpuBackend be, long expected) throws InterruptedException {
        for (int i = 0; i < 200 && be.memoryInUse() != expected; i++) {
            System.gc();
            Thread.sleep(50);
        }
        assertEquals(expected, be.memoryInUse(), what + ": memory in use after GC (bytes)");
    }

    // Separate methods, so that no reference to what they make stays in the caller's frame.
    private static void forgetBuffer(CpuBackend be) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 4096);
        be.fill(b, 0, 4096, 1.0);
        assertTrue(be.memoryInUse() >= 4096 * 4);
    }

    /** A weight buffer used often enough as a per-step B that the backend caches a packed copy of it. */
    private static void forgetPackedWeights(CpuBackend be) {
        DeviceBuffer a = be.allocate(DeviceBuffer.Type.F32, 8 * 64);
        DeviceBuffer w = be.allocate(DeviceBuffer.Type.F32, 64 * 64);
        DeviceBuffer c = be.allocate(DeviceBuffer.Type.F32, 8 * 64);
        be.fill(a, 0, 8 * 64, 0.5);
        be.fill(w, 0, 64 * 64, 0.25);
        for (int i = 0; i < 3; i++) {
            be.gemm(false, true, 8, 64, 64, 1f, a, 0, 64, w, 0, 64, 0f, c, 0, 64);
        }
        float[] out = new float[8 * 64];
        be.download(c, 0, out, 0, out.length);
        assertEquals(64 * 0.5f * 0.25f, out[17], 1e-5f, "c[17]");
    }

    private static void forgetRnn(CpuBackend be, Tensor x) {
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 4, 6).layers(2).bidirectional(true).build();
        Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 1));
        rnn.forward(RnnInput.of(x));
        rnn.forwardTraining(RnnInput.of(x), 3);
    }

    @Test
    void forgottenBuffersAreFreedAfterGcWhileTheBackendStaysOpen() throws Exception {
        try (CpuBackend be = CpuBackend.open(2)) {
            long base = be.memoryInUse();
            long collected = Leaks.collectedCount();
            forgetBuffer(be);
            awaitMemory("forgotten buffer", be, base);
            forgetPackedWeights(be);
            awaitMemory("forgotten buffers with a cached packed copy", be, base);
            SplittableRandom r = new SplittableRandom(7);
            Tensor x = Tensor.zeros(3, 2, 4);
            for (int i = 0; i < x.data().length; i++) x.data()[i] = r.nextDouble(-1, 1);
            forgetRnn(be, x);
            awaitMemory("forgotten network", be, base);
            assertTrue(Leaks.collectedCount() >= collected + 4,
                    "Leaks.collectedCount: expected >= " + (collected + 4) + ", got " + Leaks.collectedCount());
        }
    }

    @Test
    void closeTwiceIsHarmlessAndUseAfterCloseThrows() {
        try (CpuBackend be = CpuBackend.open(1)) {
            long base = be.memoryInUse();
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 100);
            assertEquals(base + 400, be.memoryInUse(), "memory in use after allocating 100 floats");
            b.close();
            b.close();
            assertTrue(b.isClosed(), "isClosed after close");
            assertEquals(base, be.memoryInUse(), "memory in use after closing twice");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.fill(b, 0, 1, 0.0));
            assertTrue(e.getMessage().contains("after close"), e.getMessage());
        }
    }

    @Test
    void closingTheBackendFreesOpenBuffers() {
        CpuBackend be = CpuBackend.open(2);
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 1000);
        assertTrue(be.memoryInUse() >= 4000, "memory in use: expected >= 4000, got " + be.memoryInUse());
        be.close();
        assertTrue(b.isClosed(), "buffer closed by the backend's close");
        assertEquals(0, be.memoryInUse(), "memory in use after the backend closed");
        b.close();
    }
}
