package dev.recur.nn;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.cpu.CpuAttention;
import dev.recur.backend.cpu.CpuBackend;
import dev.recur.backend.reference.ReferenceAttention;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.backend.reference.ReferenceRnn;
import dev.recur.config.AttentionConfig;
import dev.recur.config.RnnConfig;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnEngineFactory;
import dev.recur.schedule.AttentionSchedule;
import dev.recur.schedule.ScheduledRnn;

/**
 * Which engine runs a network or attention on a backend. The choice lives here, above the schedule and the
 * backends, so that the backend contract knows no networks and the backends know no schedule: the reference runs
 * its own float64 engines, every device backend the shared schedule, and the {@code cpu} backend its fused
 * attention (falling back to the schedule for shapes past int indexing).
 */
public final class Engines {
    private Engines() {
    }

    /** The engine {@link Rnn} runs {@code config} with on {@code backend}; the caller owns and closes it. */
    public static RnnEngine rnn(Backend backend, RnnConfig config) {
        if (backend instanceof RnnEngineFactory own) return own.createRnnEngine(config);
        if (backend instanceof ReferenceBackend) return new ReferenceRnn(config);
        if (backend instanceof DeviceBackend db) return new ScheduledRnn(db, config);
        throw new IllegalArgumentException("backend: networks run on the reference backend or a device backend, got '"
                + backend.name() + "' (" + backend.getClass().getName() + ")");
    }

    /**
     * The engine {@code dev.recur.nn.attention.Attention} runs {@code config} with on {@code backend}; the caller
     * owns and closes it.
     */
    public static AttentionEngine attention(Backend backend, AttentionConfig config) {
        if (backend instanceof ReferenceBackend) return new ReferenceAttention(config);
        if (backend instanceof CpuBackend cpu) return new CpuAttention(cpu, config, () -> new AttentionSchedule(cpu, config));
        if (backend instanceof DeviceBackend db) return new AttentionSchedule(db, config);
        throw new IllegalArgumentException("backend: attention runs on the reference backend or a device backend, got '"
                + backend.name() + "' (" + backend.getClass().getName() + ")");
    }
}
