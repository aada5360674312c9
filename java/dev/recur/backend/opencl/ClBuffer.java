package dev.recur.backend.opencl;

import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Leaks;
import org.jocl.cl_mem;

import java.util.concurrent.atomic.AtomicReference;

import static org.jocl.CL.clReleaseMemObject;

/**
 * An OpenCL buffer allocated by an {@link OpenClBackend}. The memory object lives in a separate {@link Mem}
 * that the backend tracks (so it can free what is still open when it closes) and that the {@link Leaks}
 * cleaner frees if this buffer is forgotten without {@link #close()}: neither refers back to the buffer, so an
 * unclosed buffer can still become unreachable.
 */
final class ClBuffer implements DeviceBuffer {
    final OpenClBackend owner;
    final Type type;
    final long size;
    private final Mem mem;
    private final Leaks.Handle handle;

    /** The memory object and its account; released at most once, from any thread. */
    static final class Mem implements Leaks.Release {
        private final OpenClBackend owner;
        final long bytes;
        private final AtomicReference<cl_mem> ref;
        /** The caller's memory object ({@link OpenClBackend#wrap}): detached on close, never released here. */
        final boolean wrapped;

        Mem(OpenClBackend owner, long bytes, cl_mem m, boolean wrapped) {
            this.owner = owner;
            this.bytes = bytes;
            this.ref = new AtomicReference<>(m);
            this.wrapped = wrapped;
        }

        @Override
        public boolean release() {
            cl_mem m = ref.getAndSet(null);
            if (m == null || wrapped) return false;
            // clReleaseMemObject is thread-safe, and OpenCL keeps the object until queued commands using it finish.
            try {
                clReleaseMemObject(m);
            } finally {
                owner.released(this);
            }
            return true;
        }
    }

    ClBuffer(OpenClBackend owner, Type type, long size, cl_mem mem) {
        this(owner, type, size, mem, false);
    }

    ClBuffer(OpenClBackend owner, Type type, long size, cl_mem mem, boolean wrapped) {
        this.owner = owner;
        this.type = type;
        this.size = size;
        this.mem = new Mem(owner, size * type.bytes(), mem, wrapped);
        this.handle = Leaks.register(this, wrapped ? "A wrapped OpenCL DeviceBuffer" : "An OpenCL DeviceBuffer", this.mem);
    }

    Mem state() {
        return mem;
    }

    cl_mem mem() {
        cl_mem m = mem.ref.get();
        if (m == null) throw new IllegalStateException("DeviceBuffer: used after close() (" + this + ")");
        return m;
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
        return mem.ref.get() == null;
    }

    @Override
    public void close() {
        handle.close();
    }

    @Override
    public String toString() {
        return "ClBuffer[" + type + " x " + size + (mem.wrapped ? ", wrapped" : "") + (isClosed() ? ", closed" : "") + "]";
    }
}
