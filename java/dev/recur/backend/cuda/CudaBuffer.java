package dev.recur.backend.cuda;

import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Leaks;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Device memory from {@code cuMemAlloc}, owned by one {@link CudaBackend}; closing it frees it. The address lives
 * in a separate {@link Mem} that the backend tracks (so it frees what is still open when it closes) and that the
 * {@link Leaks} cleaner frees if this buffer is forgotten without {@link #close()}: neither refers back to the
 * buffer, so a forgotten buffer can still become unreachable.
 */
final class CudaBuffer implements DeviceBuffer {
    private final CudaBackend owner;
    private final Type type;
    private final long size;
    private final Mem mem;
    private final Leaks.Handle handle;

    /** The device address and its account; released at most once, from any thread. */
    static final class Mem implements Leaks.Release {
        private final CudaBackend owner;
        final long bytes;
        /** 0 once freed. */
        private final AtomicLong address;
        /** The caller's memory ({@link CudaBackend#wrap}): detached on close, never freed here. */
        final boolean wrapped;

        Mem(CudaBackend owner, long bytes, long address, boolean wrapped) {
            this.owner = owner;
            this.bytes = bytes;
            this.address = new AtomicLong(address);
            this.wrapped = wrapped;
        }

        long address() {
            return address.get();
        }

        @Override
        public boolean release() {
            long a = address.getAndSet(0);
            if (a == 0 || wrapped) return false;
            owner.free(this, a);
            return true;
        }
    }

    CudaBuffer(CudaBackend owner, Type type, long size, long address, boolean wrapped) {
        this.owner = owner;
        this.type = type;
        this.size = size;
        this.mem = new Mem(owner, size * type.bytes(), address, wrapped);
        this.handle = Leaks.register(this, wrapped ? "A wrapped CUDA DeviceBuffer" : "A CUDA DeviceBuffer", mem);
    }

    Mem state() {
        return mem;
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
        return mem.address() == 0;
    }

    CudaBackend owner() {
        return owner;
    }

    /** The device address of element {@code offset}. */
    long at(long offset) {
        long a = mem.address();
        if (a == 0) throw new IllegalStateException("cuda: buffer of " + size + " " + type + " elements is closed");
        return a + offset * type.bytes();
    }

    @Override
    public void close() {
        handle.close();
    }

    @Override
    public String toString() {
        return "CudaBuffer[" + type + " x " + size + (mem.wrapped ? ", wrapped" : "") + (isClosed() ? ", closed]" : "]");
    }
}
