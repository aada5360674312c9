package dev.recur.backend;

/**
 * What a {@link DeviceBackend} has moved between host and device since it was opened: bytes copied host→device
 * ({@code upload*}), bytes copied device→host ({@code download*}), and the times the host waited for the device
 * (a blocking download, {@link DeviceBackend#finish()}). Copies inside device memory ({@code copy}, kernels,
 * GEMMs) are not traffic. Read it before and after a call and take {@link #minus} to see what the call cost.
 *
 * <p>On the {@code cpu} backend the "device" is this process's off-heap memory, so a transfer is a memory copy
 * and a wait returns at once; the counts are kept the same way as on a GPU, so that a test or a benchmark can
 * show that a path moves nothing on any backend.
 */
public record Traffic(long bytesToDevice, long bytesToHost, long blockingWaits) {
    public static final Traffic ZERO = new Traffic(0, 0, 0);

    /** This count minus an earlier one: the traffic in between. */
    public Traffic minus(Traffic earlier) {
        if (earlier == null) throw new IllegalArgumentException("earlier: must not be null");
        return new Traffic(bytesToDevice - earlier.bytesToDevice, bytesToHost - earlier.bytesToHost,
                blockingWaits - earlier.blockingWaits);
    }

    /** Bytes in both directions. */
    public long bytes() {
        return bytesToDevice + bytesToHost;
    }

    /**
     * The running counts of one backend, for its implementation: thread-safe, since a download on one thread and a
     * read of the counts on another may overlap.
     */
    public static final class Counter {
        private final java.util.concurrent.atomic.AtomicLong up = new java.util.concurrent.atomic.AtomicLong();
        private final java.util.concurrent.atomic.AtomicLong down = new java.util.concurrent.atomic.AtomicLong();
        private final java.util.concurrent.atomic.AtomicLong waits = new java.util.concurrent.atomic.AtomicLong();

        public void toDevice(long bytes) {
            up.addAndGet(bytes);
        }

        /** A download: {@code bytes} to the host, and, when {@code blocking}, one wait. */
        public void toHost(long bytes, boolean blocking) {
            down.addAndGet(bytes);
            if (blocking) waits.incrementAndGet();
        }

        public void waited() {
            waits.incrementAndGet();
        }

        public Traffic read() {
            return new Traffic(up.get(), down.get(), waits.get());
        }
    }
}
