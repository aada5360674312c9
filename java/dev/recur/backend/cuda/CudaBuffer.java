package dev.recur.backend.cuda;

import dev.recur.backend.DeviceBuffer;
import jcuda.driver.CUdeviceptr;

/** Device memory from {@code cuMemAlloc}, owned by one {@link CudaBackend}; closing it frees it. */
final class CudaBuffer implements DeviceBuffer {
    private final CudaBackend owner;
    private final Type type;
    private final long size;
    private CUdeviceptr ptr;
    /** The caller's memory ({@link CudaBackend#wrap}): closing detaches it, nothing is freed. */
    private final boolean wrapped;

    CudaBuffer(CudaBackend owner, Type type, long size, CUdeviceptr ptr) {
        this(owner, type, size, ptr, false);
    }

    CudaBuffer(CudaBackend owner, Type type, long size, CUdeviceptr ptr, boolean wrapped) {
        this.owner = owner;
        this.type = type;
        this.size = size;
        this.ptr = ptr;
        this.wrapped = wrapped;
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
        return ptr == null;
    }

    CudaBackend owner() {
        return owner;
    }

    /** The device address of element {@code offset}. */
    CUdeviceptr at(long offset) {
        if (ptr == null) throw new IllegalStateException("cuda: buffer of " + size + " " + type + " elements is closed");
        return offset == 0 ? ptr : ptr.withByteOffset(offset * type.bytes());
    }

    @Override
    public void close() {
        if (ptr == null) return;
        CUdeviceptr p = ptr;
        ptr = null;
        if (!wrapped) owner.free(this, p);
    }

    @Override
    public String toString() {
        return "CudaBuffer[" + type + " x " + size + (ptr == null ? ", closed]" : "]");
    }
}
