package dev.recur.backend.cpu;

import dev.recur.backend.DeviceBuffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A {@link CpuBackend} buffer: off-heap memory from its own shared {@link Arena} (shared, so that the
 * backend's worker threads may read and write it), freed by {@link #close()}.
 */
final class CpuBuffer implements DeviceBuffer {
    final CpuBackend owner;
    private final Type type;
    private final long size;
    private final Arena arena;
    private MemorySegment segment;
    /** Bumped by every backend operation that may write this buffer; packed copies record the value they saw. */
    long version;

    CpuBuffer(CpuBackend owner, Type type, long size, Arena arena, MemorySegment segment) {
        this.owner = owner;
        this.type = type;
        this.size = size;
        this.arena = arena;
        this.segment = segment;
    }

    /** The memory; throws once closed. */
    MemorySegment segment() {
        MemorySegment s = segment;
        if (s == null) throw new IllegalStateException("DeviceBuffer: used after close()");
        return s;
    }

    @Override
    public Type type() {
        return type;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean isClosed() {
        return segment == null;
    }

    @Override
    public void close() {
        if (segment == null) return;
        segment = null;
        arena.close();
        owner.released(this);
    }

    @Override
    public String toString() {
        return "CpuBuffer[" + type + " x " + size + (segment == null ? ", closed" : "") + "]";
    }
}
