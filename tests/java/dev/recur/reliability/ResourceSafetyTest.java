package dev.recur.reliability;

import dev.recur.backend.BackendProvider;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Leaks;
import dev.recur.backend.opencl.OpenClBackend;
import dev.recur.config.AttentionConfig;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.nn.attention.Attention;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Device memory a caller forgot to close is freed after garbage collection; closing twice is harmless; use
 * after close throws {@link IllegalStateException} with a message naming what was closed. Runs on OpenCL
 * (the device backend here); the warn-once logic of {@link Leaks} is tested on its own.
 */
class ResourceSafetyTest {
    static final RnnConfig CFG = RnnConfig.builder(CellType.LSTM, 4, 6).layers(2).bidirectional(true).build();

    static DeviceBackend openCl() {
        BackendProvider.Availability a = OpenClBackend.PROVIDER.probe();
        Assumptions.assumeTrue(a.available(), () -> "opencl unavailable: " + a.detail());
        return OpenClBackend.open("hand");
    }

    /** Runs GCs (bounded: 10 s) until the backend's memory in use is {@code expected}. */
    static void awaitMemory(String what, DeviceBackend be, long expected) throws InterruptedException {
        for (int i = 0; i < 200 && be.memoryInUse() != expected; i++) {
            System.gc();
            Thread.sleep(50);
        }
        assertEquals(expected, be.memoryInUse(), what + ": memory in use after GC (bytes)");
    }

    // Separate methods, so that no reference to what they make stays in the caller's frame.
    private static void forgetBuffer(DeviceBackend be) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 4096);
        be.fill(b, 0, 4096, 1.0);
        assertTrue(be.memoryInUse() >= 4096 * 4);
    }

    private static void forgetRnn(DeviceBackend be, Tensor x) {
        Rnn rnn = Rnn.create(CFG, be, RnnWeights.init(CFG, 1));
        rnn.forward(RnnInput.of(x));
        rnn.forwardTraining(RnnInput.of(x), 3);
    }

    private static void forgetTrainingOutput(Rnn rnn, Tensor x) {
        RnnOutput out = rnn.forwardTraining(RnnInput.of(x), 5);
        assertTrue(out.trace().savedBytes() > 0);
    }

    private static void forgetAttention(DeviceBackend be) {
        AttentionConfig cfg = AttentionConfig.additive(5, 6, 4);
        Attention att = Attention.create(cfg, be, AttentionWeights.init(cfg, 2));
        att.forward(Runs.random(new SplittableRandom(1), 2, 3, 5), Runs.random(new SplittableRandom(2), 4, 3, 6), null);
    }

    @Test
    void forgottenBuffersNetworksOutputsAndAttentionAreFreedAfterGc() throws Exception {
        Tensor x = Runs.random(new SplittableRandom(7), 5, 3, 4);
        try (DeviceBackend be = openCl()) {
            long collected = Leaks.collectedCount();
            forgetBuffer(be);
            awaitMemory("a forgotten buffer", be, 0);

            forgetRnn(be, x);
            awaitMemory("a forgotten Rnn with an unclosed training output", be, 0);

            try (Rnn rnn = Rnn.create(CFG, be, RnnWeights.init(CFG, 1))) {
                rnn.forwardTraining(RnnInput.of(x), 5).close();
                long warm = be.memoryInUse();
                forgetTrainingOutput(rnn, x);
                assertTrue(be.memoryInUse() > warm, "the forgotten output held memory");
                awaitMemory("a forgotten training output of an open Rnn", be, warm);
                // The network is still fully usable.
                rnn.forwardTraining(RnnInput.of(x), 5).close();
            }
            assertEquals(0, be.memoryInUse());

            forgetAttention(be);
            awaitMemory("a forgotten Attention", be, 0);
            assertTrue(Leaks.collectedCount() >= collected + 4,
                    "objects freed after GC: " + (Leaks.collectedCount() - collected) + ", expected at least 4");
        }
    }

    @Test
    void closingTwiceIsHarmless() {
        Tensor x = Runs.random(new SplittableRandom(8), 5, 3, 4);
        DeviceBackend be = openCl();
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.I32, 10);
        b.close();
        b.close();
        assertTrue(b.isClosed());
        Rnn rnn = Rnn.create(CFG, be, RnnWeights.init(CFG, 1));
        RnnOutput out = rnn.forwardTraining(RnnInput.of(x), 1);
        out.close();
        out.close();
        rnn.close();
        rnn.close();
        out.close();
        AttentionConfig ac = AttentionConfig.general(3, 3);
        Attention att = Attention.create(ac, be, AttentionWeights.init(ac, 1));
        att.close();
        att.close();
        assertEquals(0, be.memoryInUse());
        DeviceBuffer open = be.allocate(DeviceBuffer.Type.F32, 8);
        be.close();
        be.close();
        assertTrue(open.isClosed(), "closing the backend closed its open buffer");
        open.close();
        assertEquals(0, be.memoryInUse());
    }

    @Test
    void useAfterCloseThrowsAClearIllegalStateException() {
        Tensor x = Runs.random(new SplittableRandom(9), 5, 3, 4);
        DeviceBackend be = openCl();
        try {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 10);
            b.close();
            assertMessage(assertThrows(IllegalStateException.class, () -> be.upload(new float[10], 0, b, 0, 10)),
                    "dst", "after close");
            assertMessage(assertThrows(IllegalStateException.class, () -> be.fill(b, 0, 10, 0.0)), "after close");

            Rnn rnn = Rnn.create(CFG, be, RnnWeights.init(CFG, 1));
            RnnOutput out = rnn.forwardTraining(RnnInput.of(x), 1);
            out.close();
            assertMessage(assertThrows(IllegalStateException.class, () -> rnn.backward(out, null, null, null)),
                    "trace was used after close()");
            RnnOutput open = rnn.forwardTraining(RnnInput.of(x), 1);
            rnn.close();
            assertMessage(assertThrows(IllegalStateException.class, () -> rnn.forward(RnnInput.of(x))),
                    "Rnn: used after close()");
            assertMessage(assertThrows(IllegalStateException.class, () -> rnn.backward(open, null, null, null)),
                    "Rnn: used after close()");
            assertMessage(assertThrows(IllegalStateException.class, () -> rnn.setWeights(RnnWeights.init(CFG, 2))),
                    "Rnn: used after close()");
            open.close();

            AttentionConfig ac = AttentionConfig.general(3, 3);
            Attention att = Attention.create(ac, be, AttentionWeights.init(ac, 1));
            att.close();
            Tensor d = Tensor.zeros(2, 1, 3);
            assertMessage(assertThrows(IllegalStateException.class, () -> att.forward(d, d, null)),
                    "Attention: used after close()");
            assertEquals(0, be.memoryInUse());
        } finally {
            be.close();
        }
        assertMessage(assertThrows(IllegalStateException.class, () -> be.allocate(DeviceBuffer.Type.F32, 1)),
                "OpenClBackend: used after close()");
        assertMessage(assertThrows(IllegalStateException.class, () -> Rnn.create(CFG, be, RnnWeights.init(CFG, 1))),
                "used after close()");
    }

    @Test
    void theFirstObjectOfAKindFreedByGcLogsOneWarning() throws Exception {
        Logger log = Logger.getLogger("dev.recur");
        List<LogRecord> records = new ArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                synchronized (records) {
                    records.add(r);
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(h);
        try {
            String kind = "A test object " + System.nanoTime();
            java.util.concurrent.atomic.AtomicInteger released = new java.util.concurrent.atomic.AtomicInteger();
            registerForgotten(kind, released);
            registerForgotten(kind, released);
            for (int i = 0; i < 200 && released.get() < 2; i++) {
                System.gc();
                Thread.sleep(50);
            }
            assertEquals(2, released.get(), "releases run after GC");
            List<LogRecord> mine = new ArrayList<>();
            synchronized (records) {
                for (LogRecord r : records) if (r.getMessage().contains(kind)) mine.add(r);
            }
            assertEquals(1, mine.size(), "warnings for two forgotten objects of one kind: " + mine);
            assertEquals(java.util.logging.Level.WARNING, mine.get(0).getLevel());
            assertTrue(mine.get(0).getMessage().contains("was not closed"), mine.get(0).getMessage());

            // An explicit close releases at once, exactly once, and never warns.
            String closedKind = "A closed test object " + System.nanoTime();
            Object owner = new Object();
            int[] n = new int[1];
            Leaks.Handle handle = Leaks.register(owner, closedKind, () -> {
                n[0]++;
                return true;
            });
            handle.close();
            handle.close();
            assertEquals(1, n[0]);
            assertTrue(handle.isClosed());
            synchronized (records) {
                for (LogRecord r : records) assertTrue(!r.getMessage().contains(closedKind), r.getMessage());
            }
        } finally {
            log.removeHandler(h);
        }
    }

    private static void registerForgotten(String kind, java.util.concurrent.atomic.AtomicInteger released) {
        Leaks.register(new Object(), kind, () -> {
            released.incrementAndGet();
            return true;
        });
    }

    static void assertMessage(Throwable t, String... parts) {
        for (String p : parts) {
            assertTrue(t.getMessage() != null && t.getMessage().contains(p),
                    "message should contain '" + p + "': " + t.getMessage());
        }
    }
}
