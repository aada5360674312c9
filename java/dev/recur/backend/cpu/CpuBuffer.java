package dev.recur.backend.cpu;

import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Leaks;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A {@link CpuBackend} buffer: off-heap memory from its own shared {@link Arena} (shared, so that the
 * backend's worker threads may read and write it), freed by {@link #close()}. The memory lives in a separate
 * {@link Mem} that the backend tracks (so it can free what is still open when it closes) and that the
 * {@link Leaks} cleaner frees if this buffer is forgotten without {@link #close()}: neither refers back to the
 * buffer, so an unclosed buffer can still become unreachable.
 */
final class CpuBuffer implements DeviceBuffer {
    final CpuBackend owner;
    private final Type type;
    private final long size;
    final Mem mem;
    private final Leaks.Handle handle;

    /** The memory and its account; released at most once, from any thread (close, backend close, or cleaner). */
    static final class Mem implements Leaks.Release {
        private final CpuBackend owner;
        final long bytes;
        private Arena arena;
        private volatile MemorySegment segment;
        /** Bumped by every backend operation that may write the buffer; packed copies record the value they saw. */
        long version;
        /**
         * Memory the caller owns ({@link CpuBackend#wrap}): never freed here, not counted in memoryInUse, and never
         * packed into the GEMM cache (the caller may write it behind the backend's back, which no version sees).
         */
        final boolean wrapped;

        Mem(CpuBackend owner, long bytes, Arena arena, MemorySegment segment) {
            this(owner, bytes, arena, segment, false);
        }

        Mem(CpuBackend owner, long bytes, Arena arena, MemorySegment segment, boolean wrapped) {
            this.owner = owner;
            this.bytes = bytes;
            this.arena = arena;
            this.segment = segment;
            this.wrapped = wrapped;
        }

        @Override
        public boolean release() {
            Arena a;
            MemorySegment s;
            synchronized (this) {
                a = arena;
                s = segment;
                if (s == null) return false;
                arena = null;
                segment = null;
            }
            if (wrapped) {
                // The caller's memory: forget it, free nothing (so nothing to warn about if it was forgotten).
                owner.unwrapped(this);
                return false;
            }
            owner.released(this, a, s);
            return true;
        }

        boolean isClosed() {
            return segment == null;
        }
    }

    CpuBuffer(CpuBackend owner, Type type, long size, Mem mem) {
        this.owner = owner;
        this.type = type;
        this.size = size;
        this.mem = mem;
        this.handle = Leaks.register(this, mem.wrapped ? "A wrapped cpu DeviceBuffer" : "A cpu DeviceBuffer", mem);
    }

    /** The memory; throws once closed. */
    MemorySegment segment() {
        MemorySegment s = mem.segment;
        if (s == null) throw new IllegalStateException("DeviceBuffer: used after close() (" + this + ")");
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
        return mem.isClosed();
    }

    @Override
    public void close() {
        handle.close();
    }

    @Override
    public String toString() {
        return "CpuBuffer[" + type + " x " + size + (mem.wrapped ? ", wrapped" : "") + (isClosed() ? ", closed" : "") + "]";
    }
}
