package dev.recur.backend.opencl;

import dev.recur.backend.DeviceBuffer;
import org.jocl.cl_mem;

import static org.jocl.CL.clReleaseMemObject;

/** An OpenCL buffer allocated by an {@link OpenClBackend}. */
final class ClBuffer implements DeviceBuffer {
    final OpenClBackend owner;
    final Type type;
    final long size;
    private cl_mem mem;

    ClBuffer(OpenClBackend owner, Type type, long size, cl_mem mem) {
        this.owner = owner;
        this.type = type;
        this.size = size;
        this.mem = mem;
    }

    cl_mem mem() {
        if (mem == null) throw new IllegalStateException("DeviceBuffer: used after close()");
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
        return mem == null;
    }

    @Override
    public void close() {
        if (mem == null) return;
        cl_mem m = mem;
        mem = null;
        clReleaseMemObject(m);
        owner.released(this);
    }

    @Override
    public String toString() {
        return "ClBuffer[" + type + " x " + size + (mem == null ? ", closed" : "") + "]";
    }
}
