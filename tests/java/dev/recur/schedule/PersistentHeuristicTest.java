package dev.recur.schedule;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Kernels;
import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceRows;
import dev.recur.schedule.ScheduledRnn.Persistence;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which layers the schedule runs as one persistent single-work-group launch: small batches (the latency case)
 * yes, large batches and unsupported options no, and never on a backend that lacks the optional kernels.
 */
class PersistentHeuristicTest {
    static RnnConfig lstm(int in, int h) {
        return RnnConfig.builder(CellType.LSTM, in, h).build();
    }

    @Test
    void picksThePersistentKernelForSmallBatchesOnly() {
        RnnConfig latency = lstm(128, 128);
        assertEquals(Kernels.LSTM_SEQ_FWD, ScheduledRnn.persistentKernel(latency, 1, Persistence.AUTO, k -> true),
                "LSTM T=20 B=1 I=H=128 (the latency row)");
        for (int b = 1; b <= 4; b++) {
            assertEquals(Kernels.LSTM_SEQ_FWD, ScheduledRnn.persistentKernel(latency, b, Persistence.AUTO, k -> true),
                    "LSTM H=128 B=" + b);
        }
        assertNull(ScheduledRnn.persistentKernel(latency, 32, Persistence.AUTO, k -> true), "LSTM H=128 B=32");
        assertNull(ScheduledRnn.persistentKernel(lstm(256, 256), 32, Persistence.AUTO, k -> true),
                "LSTM T=50 B=32 H=256 (the throughput rows)");
        assertEquals(Kernels.LSTM_SEQ_FWD, ScheduledRnn.persistentKernel(lstm(256, 256), 8, Persistence.AUTO,
                k -> true), "LSTM H=256 B=8");
        assertNull(ScheduledRnn.persistentKernel(lstm(512, 512), 4, Persistence.AUTO, k -> true),
                "LSTM H=512 B=4: one step's recurrent GEMM is too big for one work-group");
        assertNull(ScheduledRnn.persistentKernel(lstm(1024, 1024), 1, Persistence.AUTO, k -> true),
                "LSTM H=1024 B=1");
        assertEquals(Kernels.GRU_SEQ_FWD, ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.GRU, 128, 128)
                .build(), 2, Persistence.AUTO, k -> true), "GRU B=2");
        assertEquals(Kernels.RNN_SEQ_FWD, ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.RNN_RELU, 64, 64)
                .bidirectional(true).build(), 4, Persistence.AUTO, k -> true), "RNN relu bi B=4");
        assertNull(ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.RNN_TANH, 64, 64).bidirectional(true)
                .build(), 8, Persistence.AUTO, k -> true), "bidirectional B=8 is 16 GEMM rows");
    }

    @Test
    void alwaysAndNeverOverrideTheSizesButNotTheBackendOrTheOptions() {
        RnnConfig big = lstm(256, 256);
        assertEquals(Kernels.LSTM_SEQ_FWD, ScheduledRnn.persistentKernel(big, 64, Persistence.ALWAYS, k -> true));
        assertNull(ScheduledRnn.persistentKernel(lstm(8, 8), 1, Persistence.NEVER, k -> true));
        assertNull(ScheduledRnn.persistentKernel(lstm(8, 8), 1, Persistence.ALWAYS, k -> false),
                "a backend without the optional kernel keeps the per-step path");
        assertNull(ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.LSTM, 8, 8).projSize(4).build(), 1,
                Persistence.ALWAYS, k -> true), "projection");
        assertNull(ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.GRU, 8, 8).layerNorm(true).build(), 1,
                Persistence.ALWAYS, k -> true), "layer norm");
        assertNull(ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.GRU, 8, 8).gruReset(GruReset.BEFORE)
                .build(), 1, Persistence.ALWAYS, k -> true), "GRU reset-before");
    }

    @Test
    void aBackendWhoseSequenceKernelsUseTheWholeDeviceGetsThemAtEverySize() {
        assertEquals(Kernels.LSTM_SEQ_FWD, ScheduledRnn.persistentKernel(lstm(512, 512), 64, Persistence.AUTO,
                k -> true, true), "cpu: LSTM H=512 B=64");
        assertNull(ScheduledRnn.persistentKernel(lstm(512, 512), 64, Persistence.NEVER, k -> true, true), "never");
        assertNull(ScheduledRnn.persistentKernel(RnnConfig.builder(CellType.LSTM, 8, 8).layerNorm(true).build(), 64,
                Persistence.AUTO, k -> true, true), "layer norm stays per step");
        assertEquals(Kernels.LSTM_SEQ_BWD, ScheduledRnn.sequenceBackwardKernel(lstm(256, 256), Persistence.AUTO,
                k -> true));
        assertEquals(Kernels.GRU_SEQ_BWD, ScheduledRnn.sequenceBackwardKernel(RnnConfig.builder(CellType.GRU, 8, 8)
                .build(), Persistence.AUTO, k -> true));
        assertEquals(Kernels.RNN_SEQ_BWD, ScheduledRnn.sequenceBackwardKernel(RnnConfig.builder(CellType.RNN_TANH, 8,
                8).build(), Persistence.AUTO, k -> true));
        assertNull(ScheduledRnn.sequenceBackwardKernel(lstm(8, 8), Persistence.NEVER, k -> true), "never");
        assertNull(ScheduledRnn.sequenceBackwardKernel(lstm(8, 8), Persistence.AUTO, k -> false), "unsupported");
        assertNull(ScheduledRnn.sequenceBackwardKernel(RnnConfig.builder(CellType.LSTM, 8, 8).projSize(4).build(),
                Persistence.AUTO, k -> true), "projection");
        assertNull(ScheduledRnn.sequenceBackwardKernel(RnnConfig.builder(CellType.GRU, 8, 8).gruReset(GruReset.BEFORE)
                .build(), Persistence.AUTO, k -> true), "GRU reset-before");
        try (DeviceBackend cpu = dev.recur.backend.cpu.CpuBackend.open(2)) {
            assertTrue(cpu.sequenceKernelsScale());
            for (String k : Kernels.SINGLE_GROUP) assertTrue(cpu.supports(k), k);
            for (String k : Kernels.SEQUENCE_BWD) assertTrue(cpu.supports(k), k);
            assertFalse(cpu.supports(Kernels.LSTM_STEP_FWD8), "no 8-unit step kernels");
        }
    }

    @Test
    void openClSupportsTheSingleGroupKernelsAndTheDefaultBackendDoesNot() {
        DeviceBackend be = DeviceRows.backend("opencl");
        for (String k : Kernels.SINGLE_GROUP) assertTrue(be.supports(k), k);
        assertFalse(be.supports(Kernels.LSTM_STEP_FWD), "only the optional kernels are reported");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.launch(Kernels.RNN_SEQ_FWD,
                new long[] {1 << 20}, 1, 1, 1, 1, 0, null, null, null, null, null, null, null, null));
        assertTrue(e.getMessage().contains("single work-group"), e.getMessage());
    }

    @Test
    void badPropertyIsRefusedByName() {
        String old = System.getProperty("recur.persistent");
        System.setProperty("recur.persistent", "sometimes");
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Persistence::fromProperty);
            assertTrue(e.getMessage().contains("recur.persistent") && e.getMessage().contains("sometimes"),
                    e.getMessage());
        } finally {
            if (old == null) System.clearProperty("recur.persistent");
            else System.setProperty("recur.persistent", old);
        }
    }
}
