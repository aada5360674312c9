package dev.recur.engine;

/**
 * What a training-mode forward saved for its backward pass (activated gates, cell states, masks),
 * held by the engine that made it: host arrays for the reference, device buffers elsewhere. Close it
 * to release device memory as soon as backward is done.
 */
public interface RnnTrace extends AutoCloseable {
    /** Bytes held for backward. */
    long savedBytes();

    @Override
    void close();
}
