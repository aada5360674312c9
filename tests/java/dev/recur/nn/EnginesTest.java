package dev.recur.nn;

import dev.recur.backend.Backend;
import dev.recur.backend.cpu.CpuAttention;
import dev.recur.backend.cpu.CpuBackend;
import dev.recur.backend.reference.ReferenceAttention;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.backend.reference.ReferenceRnn;
import dev.recur.config.AttentionConfig;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnEngineFactory;
import dev.recur.schedule.ScheduledRnn;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The engine each backend gets, now that the model API chooses it rather than the backend: the same as when the
 * backends made their own (the choice decides which code runs, and with it the numbers).
 */
class EnginesTest {
    private static final RnnConfig RNN = RnnConfig.builder(CellType.GRU, 3, 4).build();
    private static final AttentionConfig ATT = AttentionConfig.general(4, 5);

    @Test
    void theReferenceRunsItsOwnFloat64Engines() {
        try (Backend be = new ReferenceBackend();
             RnnEngine rnn = Engines.rnn(be, RNN);
             AttentionEngine att = Engines.attention(be, ATT)) {
            assertInstanceOf(ReferenceRnn.class, rnn);
            assertInstanceOf(ReferenceAttention.class, att);
        }
    }

    @Test
    void theCpuBackendRunsTheScheduleAndItsFusedAttention() {
        try (CpuBackend be = CpuBackend.open(1);
             RnnEngine rnn = Engines.rnn(be, RNN);
             AttentionEngine att = Engines.attention(be, ATT)) {
            assertInstanceOf(ScheduledRnn.class, rnn);
            assertInstanceOf(CpuAttention.class, att);
        }
    }

    @Test
    void aBackendThatBringsItsOwnEngineGetsIt() {
        RnnEngine own = new ReferenceRnn(RNN);
        class Own implements Backend, RnnEngineFactory {
            @Override
            public String name() {
                return "own";
            }

            @Override
            public String deviceName() {
                return "test";
            }

            @Override
            public RnnEngine createRnnEngine(RnnConfig config) {
                return own;
            }

            @Override
            public void close() {
            }
        }
        try (Own be = new Own(); RnnEngine e = Engines.rnn(be, RNN)) {
            assertSame(own, e);
        }
    }

    @Test
    void anyOtherBackendIsRefusedNamingIt() {
        Backend other = new Backend() {
            @Override
            public String name() {
                return "abacus";
            }

            @Override
            public String deviceName() {
                return "beads";
            }

            @Override
            public void close() {
            }
        };
        String cls = other.getClass().getName();
        assertEquals("backend: networks run on the reference backend or a device backend, got 'abacus' (" + cls + ")",
                assertThrows(IllegalArgumentException.class, () -> Engines.rnn(other, RNN)).getMessage());
        assertEquals("backend: attention runs on the reference backend or a device backend, got 'abacus' (" + cls + ")",
                assertThrows(IllegalArgumentException.class, () -> Engines.attention(other, ATT)).getMessage());
    }
}
