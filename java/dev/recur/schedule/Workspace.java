package dev.recur.schedule;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;

import java.util.HashMap;
import java.util.Map;

/**
 * Named device scratch buffers kept across steps and calls: {@link #get} returns the buffer last made
 * under a name when it is large enough, and replaces it only when a call needs more. Everything is freed
 * by {@link #close()}.
 */
final class Workspace implements AutoCloseable {
    private final DeviceBackend backend;
    private final Map<String, DeviceBuffer> buffers = new HashMap<>();

    Workspace(DeviceBackend backend) {
        this.backend = backend;
    }

    /** A buffer of at least {@code elements} elements (contents unspecified). */
    DeviceBuffer get(String name, DeviceBuffer.Type type, long elements) {
        long n = Math.max(1, elements);
        DeviceBuffer b = buffers.get(name);
        if (b != null && b.type() == type && b.size() >= n) return b;
        if (b != null) {
            buffers.remove(name);
            b.close();
        }
        DeviceBuffer fresh = backend.allocate(type, n);
        buffers.put(name, fresh);
        return fresh;
    }

    DeviceBuffer f32(String name, long elements) {
        return get(name, DeviceBuffer.Type.F32, elements);
    }

    long bytes() {
        long s = 0;
        for (DeviceBuffer b : buffers.values()) s += b.bytes();
        return s;
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (DeviceBuffer b : buffers.values()) {
            try {
                b.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        buffers.clear();
        if (first != null) throw first;
    }
}
