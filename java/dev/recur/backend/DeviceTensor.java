package dev.recur.backend;

import dev.recur.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * A row-major tensor in one {@link DeviceBackend}'s memory: a {@link DeviceBuffer}, an element offset into it and a
 * shape. Float32 ({@link DeviceBuffer.Type#F32}) for data, int32 ({@link DeviceBuffer.Type#I32}) for lengths and
 * ids. Data reaches the host only when asked ({@link #toFloatArray()}, {@link #copyTo(float[])},
 * {@link #toTensor()}): nothing here copies behind the caller's back, and every copy across is counted in the
 * backend's {@link DeviceBackend#traffic() traffic}.
 *
 * <h2>Ownership</h2>
 * A tensor made by {@link #allocate}, {@link #zeros} or {@code of(...)} owns its buffer: {@link #close()} frees it
 * (and a forgotten one is freed after garbage collection with a warning, through the buffer's {@link Leaks}
 * registration). A {@link #view}, {@link #reshape} or {@link #slice} shares the memory and owns nothing: closing it
 * does nothing, and it must not be used after its owner is closed. {@link #over} puts a shape on a buffer the
 * caller keeps (e.g. one from {@code OpenClBackend.wrap} or {@code CpuBackend.wrap}, over the caller's own memory)
 * without taking ownership either.
 *
 * <h2>Arguments</h2>
 * Every factory and view checks its arguments before anything is allocated or copied and throws
 * {@link IllegalArgumentException} naming the argument, the expected and the actual value.
 */
public final class DeviceTensor implements AutoCloseable {
    private final DeviceBackend backend;
    private final DeviceBuffer buffer;
    private final long offset;
    private final int[] shape;
    private final long size;
    private final boolean owner;

    private DeviceTensor(DeviceBackend backend, DeviceBuffer buffer, long offset, int[] shape, boolean owner) {
        this.backend = backend;
        this.buffer = buffer;
        this.offset = offset;
        this.shape = shape;
        this.size = elements("shape", shape);
        this.owner = owner;
    }

    // ------------------------------------------------------------------------------------------------------
    // Making tensors

    /** A new tensor of {@code type} with unspecified contents. */
    public static DeviceTensor allocate(DeviceBackend backend, DeviceBuffer.Type type, int... shape) {
        requireBackend(backend);
        if (type == null) throw new IllegalArgumentException("type: must not be null");
        long n = elements("shape", shape);
        DeviceBuffer b = backend.allocate(type, Math.max(1, n));
        return new DeviceTensor(backend, b, 0, shape.clone(), true);
    }

    /** A new float32 tensor of zeros (filled on the device). */
    public static DeviceTensor zeros(DeviceBackend backend, int... shape) {
        DeviceTensor t = allocate(backend, DeviceBuffer.Type.F32, shape);
        t.fill(0);
        return t;
    }

    /** A new float32 tensor holding {@code data} (exactly as many elements as {@code shape} has): one upload. */
    public static DeviceTensor of(DeviceBackend backend, float[] data, int... shape) {
        requireBackend(backend);
        if (data == null) throw new IllegalArgumentException("data: must not be null");
        requireCount("data", data.length, shape);
        DeviceTensor t = allocate(backend, DeviceBuffer.Type.F32, shape);
        try {
            t.copyFrom(data);
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** A new int32 tensor holding {@code data} (lengths, token ids): one upload. */
    public static DeviceTensor ofInts(DeviceBackend backend, int[] data, int... shape) {
        requireBackend(backend);
        if (data == null) throw new IllegalArgumentException("data: must not be null");
        requireCount("data", data.length, shape);
        DeviceTensor t = allocate(backend, DeviceBuffer.Type.I32, shape);
        try {
            if (data.length > 0) backend.upload(data, 0, t.buffer, 0, data.length);
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
        return t;
    }

    /**
     * A new float32 tensor holding the {@code remaining()} floats of {@code data} from its position (which is not
     * moved): one upload, straight from the buffer's memory where it is direct.
     */
    public static DeviceTensor of(DeviceBackend backend, FloatBuffer data, int... shape) {
        requireBackend(backend);
        if (data == null) throw new IllegalArgumentException("data: must not be null");
        requireCount("data", data.remaining(), shape);
        MemorySegment seg = MemorySegment.ofBuffer(data);
        return of(backend, seg, DeviceBuffer.Type.F32, shape);
    }

    /**
     * A new tensor of {@code type} holding the first elements of {@code data} (native byte order; the segment must
     * hold at least as many as {@code shape} has): one upload. To use the segment's memory in place instead, wrap
     * it ({@code CpuBackend.wrap}) and put a shape on it with {@link #over}.
     */
    public static DeviceTensor of(DeviceBackend backend, MemorySegment data, DeviceBuffer.Type type, int... shape) {
        requireBackend(backend);
        if (data == null) throw new IllegalArgumentException("data: must not be null");
        if (type == null) throw new IllegalArgumentException("type: must not be null");
        long n = elements("shape", shape);
        if (data.byteSize() < n * 4) {
            throw new IllegalArgumentException("data: expected at least " + n * 4 + " bytes for shape "
                    + Arrays.toString(shape) + ", got a segment of " + data.byteSize());
        }
        DeviceTensor t = allocate(backend, type, shape);
        try {
            if (n > 0) backend.upload(data, 0, t.buffer, 0, n);
        } catch (RuntimeException | Error e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** A new float32 tensor with the values of the float64 host tensor {@code t}, rounded: one upload. */
    public static DeviceTensor of(DeviceBackend backend, Tensor t) {
        requireBackend(backend);
        if (t == null) throw new IllegalArgumentException("t: must not be null");
        DeviceTensor d = allocate(backend, DeviceBuffer.Type.F32, t.shape());
        try {
            d.copyFrom(t);
        } catch (RuntimeException | Error e) {
            d.close();
            throw e;
        }
        return d;
    }

    /**
     * A tensor over {@code buffer} (of {@code backend}) from element 0, without taking ownership: closing the tensor
     * leaves the buffer open. For buffers the caller manages, e.g. wrapped memory.
     */
    public static DeviceTensor over(DeviceBackend backend, DeviceBuffer buffer, int... shape) {
        requireBackend(backend);
        if (buffer == null) throw new IllegalArgumentException("buffer: must not be null");
        long n = elements("shape", shape);
        if (n > buffer.size()) {
            throw new IllegalArgumentException("shape: " + Arrays.toString(shape) + " needs " + n + " elements, the buffer has "
                    + buffer.size());
        }
        return new DeviceTensor(backend, buffer, 0, shape.clone(), false);
    }

    // ------------------------------------------------------------------------------------------------------
    // Views (share the memory, own nothing)

    /** A view of {@code shape} starting {@code offset} elements into this tensor. */
    public DeviceTensor view(long offset, int... shape) {
        long n = elements("shape", shape);
        if (offset < 0 || offset + n > size) {
            throw new IllegalArgumentException("offset: a view of " + n + " elements " + Arrays.toString(shape) + " at "
                    + offset + " does not fit in a tensor of " + size + " elements " + Arrays.toString(this.shape));
        }
        return new DeviceTensor(backend, buffer, this.offset + offset, shape.clone(), false);
    }

    /** The same elements under another shape of the same size. */
    public DeviceTensor reshape(int... shape) {
        long n = elements("shape", shape);
        if (n != size) {
            throw new IllegalArgumentException("shape: expected " + size + " elements (" + Arrays.toString(this.shape)
                    + "), got " + Arrays.toString(shape) + " with " + n);
        }
        return new DeviceTensor(backend, buffer, offset, shape.clone(), false);
    }

    /** Rows {@code [from, to)} along dimension 0. */
    public DeviceTensor slice(int from, int to) {
        if (shape.length == 0) throw new IllegalArgumentException("slice: a tensor of rank 0 has no dimension 0");
        if (from < 0 || to < from || to > shape[0]) {
            throw new IllegalArgumentException("slice: expected 0 <= from <= to <= " + shape[0] + ", got [" + from + ", "
                    + to + ")");
        }
        int[] s = shape.clone();
        s[0] = to - from;
        long row = shape[0] == 0 ? 0 : size / shape[0];
        return new DeviceTensor(backend, buffer, offset + from * row, s, false);
    }

    // ------------------------------------------------------------------------------------------------------
    // Host <-> device, only when asked

    /** Overwrites this float32 tensor with {@code data} (exactly {@link #size()} elements): one upload. */
    public void copyFrom(float[] data) {
        requireType(DeviceBuffer.Type.F32);
        if (data == null) throw new IllegalArgumentException("data: must not be null");
        requireCount("data", data.length, shape);
        if (data.length > 0) backend.upload(data, 0, buffer, offset, data.length);
    }

    /** Overwrites this float32 tensor with the float64 host tensor {@code t} of the same shape, rounded: one upload. */
    public void copyFrom(Tensor t) {
        requireType(DeviceBuffer.Type.F32);
        if (t == null) throw new IllegalArgumentException("t: must not be null");
        if (!Arrays.equals(t.shape(), shape)) {
            throw new IllegalArgumentException("t: expected shape " + Arrays.toString(shape) + ", got "
                    + Arrays.toString(t.shape()));
        }
        if (size > 0) backend.uploadDoubles(t.data(), 0, buffer, offset, (int) size);
    }

    /** Copies {@code src} (same type and element count, same backend) into this tensor on the device: no traffic. */
    public void copyFrom(DeviceTensor src) {
        if (src == null) throw new IllegalArgumentException("src: must not be null");
        requireSameBackend("src", src);
        if (src.type() != type()) throw new IllegalArgumentException("src: expected a " + type() + " tensor, got " + src.type());
        if (src.size != size) {
            throw new IllegalArgumentException("src: expected " + size + " elements " + Arrays.toString(shape) + ", got "
                    + src.size + " " + Arrays.toString(src.shape));
        }
        if (size > 0) backend.copy(src.buffer, src.offset, buffer, offset, size);
    }

    /** Sets every element to {@code value} on the device. */
    public void fill(double value) {
        if (size > 0) backend.fill(buffer, offset, size, value);
    }

    /** The float32 values, downloaded into a new array (waits for earlier work). */
    public float[] toFloatArray() {
        requireType(DeviceBuffer.Type.F32);
        float[] a = new float[checkedSize()];
        if (a.length > 0) backend.download(buffer, offset, a, 0, a.length);
        return a;
    }

    /** The int32 values, downloaded into a new array. */
    public int[] toIntArray() {
        requireType(DeviceBuffer.Type.I32);
        int[] a = new int[checkedSize()];
        if (a.length > 0) backend.download(buffer, offset, a, 0, a.length);
        return a;
    }

    /** Downloads the float32 values into {@code dst[0..size)} ({@code dst} must have room). */
    public void copyTo(float[] dst) {
        requireType(DeviceBuffer.Type.F32);
        if (dst == null) throw new IllegalArgumentException("dst: must not be null");
        if (dst.length < size) {
            throw new IllegalArgumentException("dst: expected room for " + size + " elements, got an array of " + dst.length);
        }
        if (size > 0) backend.download(buffer, offset, dst, 0, (int) size);
    }

    /** Downloads the values into host memory {@code dst} from byte 0 (native byte order). */
    public void copyTo(MemorySegment dst) {
        if (dst == null) throw new IllegalArgumentException("dst: must not be null");
        if (dst.byteSize() < size * 4) {
            throw new IllegalArgumentException("dst: expected at least " + size * 4 + " bytes, got a segment of " + dst.byteSize());
        }
        if (size > 0) backend.download(buffer, offset, dst, 0, size);
    }

    /** The values as a float64 host tensor of the same shape (one download). */
    public Tensor toTensor() {
        requireType(DeviceBuffer.Type.F32);
        Tensor t = Tensor.zeros(shape);
        if (size > 0) backend.downloadDoubles(buffer, offset, t.data(), 0, checkedSize());
        return t;
    }

    // ------------------------------------------------------------------------------------------------------
    // Layout on the device

    /**
     * This tensor with its first two dimensions swapped ({@code [a, b, ...] -> [b, a, ...]}: batch-first to
     * time-major and back), into {@code dst} (which must have the swapped shape) or, when {@code dst} is null, a new
     * tensor the caller owns. One {@link Kernels#TRANSPOSE} launch on the device; float32 only.
     */
    public DeviceTensor swap01(DeviceTensor dst) {
        requireType(DeviceBuffer.Type.F32);
        if (shape.length < 2) {
            throw new IllegalArgumentException("swap01: expected a tensor of rank >= 2, got shape " + Arrays.toString(shape));
        }
        int[] s = shape.clone();
        s[0] = shape[1];
        s[1] = shape[0];
        if (dst != null) {
            requireSameBackend("dst", dst);
            if (!Arrays.equals(dst.shape, s) || dst.type() != DeviceBuffer.Type.F32) {
                throw new IllegalArgumentException("dst: expected an F32 tensor of shape " + Arrays.toString(s) + ", got "
                        + dst.type() + " " + Arrays.toString(dst.shape));
            }
        }
        long inner = size == 0 ? 0 : size / ((long) shape[0] * shape[1]);
        if (size > Integer.MAX_VALUE || offset > Integer.MAX_VALUE
                || (dst != null && dst.offset > Integer.MAX_VALUE)) {
            throw new IllegalArgumentException("swap01: tensors past " + Integer.MAX_VALUE + " elements are not supported, got "
                    + size);
        }
        DeviceTensor out = dst != null ? dst : allocate(backend, DeviceBuffer.Type.F32, s);
        if (size == 0) return out;
        try {
            backend.launch(Kernels.TRANSPOSE, new long[] {inner * shape[1], shape[0]}, shape[0], shape[1], (int) inner,
                    buffer, (int) offset, shape[1], out.buffer, (int) out.offset, shape[0], 0f);
        } catch (RuntimeException | Error e) {
            if (dst == null) out.close();
            throw e;
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------------------
    // Accessors

    public DeviceBackend backend() {
        return backend;
    }

    /** The buffer this tensor lives in (shared by its views); elements from {@link #offset()} on. */
    public DeviceBuffer buffer() {
        return buffer;
    }

    /** Offset of element 0 in {@link #buffer()}, in elements. */
    public long offset() {
        return offset;
    }

    public DeviceBuffer.Type type() {
        return buffer.type();
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return shape[i];
    }

    /** Number of elements. */
    public long size() {
        return size;
    }

    /** Whether closing this tensor frees its buffer (false for views and tensors {@link #over} a caller's buffer). */
    public boolean ownsBuffer() {
        return owner;
    }

    public boolean isClosed() {
        return buffer.isClosed();
    }

    /** Frees the buffer if this tensor owns it; a view or an {@link #over} tensor is left as it is. Twice is harmless. */
    @Override
    public void close() {
        if (owner) buffer.close();
    }

    @Override
    public String toString() {
        return "DeviceTensor[" + type() + " " + Arrays.toString(shape) + " on " + backend.name()
                + (offset != 0 ? " at " + offset : "") + (owner ? "" : ", view") + (isClosed() ? ", closed" : "") + "]";
    }

    // ------------------------------------------------------------------------------------------------------
    // Checks

    /** Throws naming {@code arg} unless {@code t} lives on this tensor's backend. */
    public void requireSameBackend(String arg, DeviceTensor t) {
        if (t.backend != backend) {
            throw new IllegalArgumentException(arg + ": expected a tensor on backend " + backend.name() + " (" + backend
                    + "), got one on " + t.backend.name() + " (" + t.backend + ")");
        }
    }

    private void requireType(DeviceBuffer.Type type) {
        if (type() != type) throw new IllegalArgumentException("tensor: expected a " + type + " tensor, got " + type());
    }

    private int checkedSize() {
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor: " + size + " elements do not fit in a Java array");
        }
        return (int) size;
    }

    private static void requireBackend(DeviceBackend backend) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
    }

    private static void requireCount(String arg, long count, int[] shape) {
        long n = elements("shape", shape);
        if (count != n) {
            throw new IllegalArgumentException(arg + ": expected " + n + " elements for shape " + Arrays.toString(shape)
                    + ", got " + count);
        }
    }

    /** The element count of {@code shape}, checked: no null, no negative extent, no overflow. */
    static long elements(String arg, int[] shape) {
        if (shape == null) throw new IllegalArgumentException(arg + ": must not be null");
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException(arg + ": extents must be >= 0, got " + Arrays.toString(shape));
            }
            n = Math.multiplyHigh(n, shape[i]) != 0 || n * shape[i] < 0 ? -1 : n * shape[i];
            if (n < 0) throw new IllegalArgumentException(arg + ": " + Arrays.toString(shape) + " has too many elements");
        }
        return n;
    }
}
