package dev.recur.backend;

import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnEngine;

/**
 * A place where networks run: the float64 {@code reference}, the fast {@code cpu} backend, {@code opencl}
 * or {@code cuda}. Open one through {@link Backends}; close it to release its context and device memory.
 */
public interface Backend extends AutoCloseable {
    /** {@code reference}, {@code cpu}, {@code opencl} or {@code cuda}. */
    String name();

    /** Human-readable device description (e.g. the OpenCL device name). */
    String deviceName();

    /** An engine running networks of this configuration here; {@link dev.recur.nn.Rnn} owns and closes it. */
    RnnEngine createRnnEngine(RnnConfig config);

    @Override
    void close();
}
