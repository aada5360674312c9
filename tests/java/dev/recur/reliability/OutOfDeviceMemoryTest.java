package dev.recur.reliability;

import dev.recur.backend.DeviceBackend.OutOfDeviceMemoryException;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.opencl.OpenClBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Out of device memory under a configured limit on OpenCL: the exception names requested and available
 * bytes, everything the failing call allocated is released, and the backend (and the network) stay usable.
 */
class OutOfDeviceMemoryTest {
    static final RnnConfig CFG = RnnConfig.builder(CellType.LSTM, 8, 16).layers(2).bidirectional(true).build();

    @Test
    void allocatingPastTheLimitThrowsNamingRequestedAndAvailableBytesThenAForwardRuns() {
        try (OpenClBackend be = (OpenClBackend) ResourceSafetyTest.openCl()) {
            long limit = 1 << 20, chunk = 64 << 10;
            be.setMemoryLimit(limit);
            List<DeviceBuffer> held = new ArrayList<>();
            OutOfDeviceMemoryException oom = null;
            try {
                for (int i = 0; i < 1000 && oom == null; i++) {
                    try {
                        held.add(be.allocate(DeviceBuffer.Type.F32, chunk / 4));
                    } catch (OutOfDeviceMemoryException e) {
                        oom = e;
                    }
                }
                assertTrue(oom != null, "no OutOfDeviceMemoryException under a limit of " + limit + " bytes");
                assertEquals(limit / chunk, held.size(), "buffers of " + chunk + " bytes that fit under " + limit);
                assertEquals(chunk, oom.requestedBytes());
                assertEquals(limit - be.memoryInUse(), oom.availableBytes());
                assertTrue(oom.getMessage().contains("cannot allocate " + chunk + " bytes")
                        && oom.getMessage().contains(oom.availableBytes() + " bytes available"), oom.getMessage());
                assertEquals(limit, be.memoryInUse());
            } finally {
                for (DeviceBuffer b : held) b.close();
            }
            assertEquals(0, be.memoryInUse());
            Tensor x = Runs.random(new SplittableRandom(1), 6, 2, 8);
            try (Rnn rnn = Rnn.create(CFG, be, RnnWeights.init(CFG, 3))) {
                RnnOutput out = rnn.forward(RnnInput.of(x));
                assertEquals(16 * 2, out.y().dim(2));
            }
            assertEquals(0, be.memoryInUse());
        }
    }

    @Test
    void aForwardWhoseWorkspaceDoesNotFitFailsCleanlyAndTheBackendStaysUsable() {
        RnnWeights w = RnnWeights.init(CFG, 4);
        Tensor small = Runs.random(new SplittableRandom(2), 4, 2, 8);
        Tensor big = Runs.random(new SplittableRandom(3), 400, 16, 8);
        Runs.Result expected;
        try (OpenClBackend fresh = (OpenClBackend) ResourceSafetyTest.openCl(); Rnn rnn = Rnn.create(CFG, fresh, w)) {
            expected = Runs.step(rnn, big, null, null, 9);
        }
        try (OpenClBackend be = (OpenClBackend) ResourceSafetyTest.openCl(); Rnn rnn = Rnn.create(CFG, be, w)) {
            long start = be.memoryInUse();
            be.setMemoryLimit(start + (256 << 10));
            rnn.forward(RnnInput.of(small)).close();
            long afterSmall = be.memoryInUse();
            assertTrue(afterSmall > start, "a forward keeps a workspace");
            OutOfDeviceMemoryException e = assertThrows(OutOfDeviceMemoryException.class,
                    () -> rnn.forwardTraining(RnnInput.of(big), 9));
            assertTrue(e.requestedBytes() > e.availableBytes(), e.getMessage());
            // The failed call released its trace and its workspace (it may not shrink below the weights).
            assertEquals(start, be.memoryInUse(), "memory in use after the failed forward (weights only)");
            rnn.forward(RnnInput.of(small)).close();
            be.setMemoryLimit(Long.MAX_VALUE);
            Runs.step(rnn, big, null, null, 9).assertBitIdentical("the same network after an out-of-memory failure", expected);
        }
    }

    @Test
    void creatingANetworkOrRunningABackwardThatDoesNotFitFailsCleanly() {
        RnnWeights w = RnnWeights.init(CFG, 6);
        Tensor x = Runs.random(new SplittableRandom(4), 300, 8, 8);
        try (OpenClBackend be = (OpenClBackend) ResourceSafetyTest.openCl()) {
            be.setMemoryLimit(8 << 10);
            OutOfDeviceMemoryException e = assertThrows(OutOfDeviceMemoryException.class, () -> Rnn.create(CFG, be, w));
            assertTrue(e.availableBytes() < e.requestedBytes(), e.getMessage());
            assertEquals(0, be.memoryInUse(), "memory in use after a failed create");
            be.setMemoryLimit(Long.MAX_VALUE);
            Runs.Result expected;
            try (Rnn rnn = Rnn.create(CFG, be, w)) {
                expected = Runs.step(rnn, x, null, null, 2);
            }
            try (Rnn rnn = Rnn.create(CFG, be, w); RnnOutput out = rnn.forwardTraining(RnnInput.of(x), 2)) {
                // Room for the trace, not for backward's workspace.
                long held = be.memoryInUse();
                be.setMemoryLimit(held + (16 << 10));
                assertThrows(OutOfDeviceMemoryException.class, () -> rnn.backward(out, null, null, null));
                assertTrue(be.memoryInUse() <= held, "memory in use after the failed backward: " + be.memoryInUse()
                        + " bytes, more than the " + held + " held before it");
                be.setMemoryLimit(Long.MAX_VALUE);
                // The trace survived the failure: the same backward now runs and gives the undisturbed result.
                var g = rnn.backward(out, null, null, null);
                Runs.assertBits("backward retried after the failure", "dx", expected.tensors().get("dx"), g.dx());
                Runs.assertBits("backward retried after the failure", "dweight_hh_l1_reverse",
                        expected.tensors().get("dweight_hh_l1_reverse"), g.weight("weight_hh_l1_reverse"));
            }
            try (Rnn rnn = Rnn.create(CFG, be, w)) {
                Runs.step(rnn, x, null, null, 2).assertBitIdentical("after the failed backward", expected);
            }
            assertEquals(0, be.memoryInUse());
        }
    }

    @Test
    void theSystemPropertySetsTheLimitOfNewBackends() {
        String old = System.getProperty(OpenClBackend.MEMORY_LIMIT_PROPERTY);
        System.setProperty(OpenClBackend.MEMORY_LIMIT_PROPERTY, "4096");
        try (OpenClBackend be = (OpenClBackend) ResourceSafetyTest.openCl()) {
            be.allocate(DeviceBuffer.Type.F32, 1024).close();
            OutOfDeviceMemoryException e = assertThrows(OutOfDeviceMemoryException.class,
                    () -> be.allocate(DeviceBuffer.Type.I32, 1025));
            assertEquals(4100, e.requestedBytes());
            assertEquals(4096, e.availableBytes());
        } finally {
            if (old == null) System.clearProperty(OpenClBackend.MEMORY_LIMIT_PROPERTY);
            else System.setProperty(OpenClBackend.MEMORY_LIMIT_PROPERTY, old);
        }
    }
}
