package dev.recur.backend;

/**
 * A typed, one-dimensional array in a {@link DeviceBackend}'s memory. Sizes and offsets everywhere in
 * the contract count elements of the buffer's {@link Type}, never bytes.
 *
 * <p>A buffer belongs to the backend that allocated it and may only be passed to that backend.
 * {@link #close()} returns its memory (the backend's {@link DeviceBackend#memoryInUse()} drops by
 * {@link #bytes()}); closing twice is harmless; using a closed buffer throws {@link IllegalStateException}.
 * Contents after allocation are unspecified: fill a buffer before reading it.
 */
public interface DeviceBuffer extends AutoCloseable {
    /** Element types a device buffer can hold; both are 4 bytes wide. */
    enum Type {
        /** IEEE float32. */
        F32,
        /** Two's-complement int32. */
        I32;

        /** Bytes per element. */
        public int bytes() {
            return 4;
        }
    }

    Type type();

    /** Number of elements. */
    long size();

    /** {@code size() * type().bytes()}. */
    default long bytes() {
        return size() * type().bytes();
    }

    boolean isClosed();

    @Override
    void close();
}
