package dev.recur.backend;

/**
 * A place where networks run: the float64 {@code reference}, the fast {@code cpu} backend, {@code opencl}
 * or {@code cuda}. Open one through {@link Backends}; close it to release its context and device memory.
 * Which engine runs a network on a backend is the model API's choice ({@code dev.recur.nn.Engines}), so this
 * contract knows nothing of networks.
 */
public interface Backend extends AutoCloseable {
    /** {@code reference}, {@code cpu}, {@code opencl} or {@code cuda}. */
    String name();

    /** Human-readable device description (e.g. the OpenCL device name). */
    String deviceName();

    @Override
    void close();
}
