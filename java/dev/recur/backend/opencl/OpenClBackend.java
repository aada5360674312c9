package dev.recur.backend.opencl;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.BackendUnavailableException;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import org.jocl.CLException;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_device_id;
import org.jocl.cl_kernel;
import org.jocl.cl_mem;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import static org.jocl.CL.*;

/**
 * The OpenCL backend through JOCL: buffers, GEMM and the kernels of {@code kernels/opencl/*.cl} on the first
 * device of the first platform that has one (PoCL's CPU device here). The context and the kernel program
 * are shared per process ({@link OpenClDevice}); each backend has its own in-order queue, kernel objects and
 * memory account, and frees whatever buffers are still open when it is closed.
 *
 * <p>GEMM: {@link HandGemm} by default; {@code -Drecur.opencl.gemm=clblast} selects CLBlast. Measured on PoCL
 * (2-core EPYC shared with other jobs; one call plus clFinish, median of 20-200 at a quiet moment, GFLOP/s), the
 * 6 x 16 kernel against the earlier 4 x 16 one: input projection m=1600 n=1024 k=256 NN 124 (was 91), per step
 * m=32 n=1024 k=256 NN 75 (35; about 70 us of each call is the clFinish round trip), per-step backward m=32 n=256
 * k=1024 NN 68 (35), dx 1600x256x1024 NN 112 (85), dW 1024x256x1600 TN 105 (49, both packing A^T first).
 * {@code OpenClGemmBench} measured CLBlast at 2-4 and the NT case (not used by the schedule) at 3; the schedule
 * keeps transposed weight copies so that all its GEMMs have a non-transposed B, the hand kernel's vector case.
 *
 * <p>Optional kernels ({@link #supports}): every one of {@link Kernels#OPTIONAL}. The 8-units-per-work-item step
 * kernels ({@code *_step_fwd8}, {@code lstm_step_bwd8}) because PoCL does not vectorise the one-unit step kernels
 * across work items: with a library exp/tanh per unit the LSTM forward step cost 1.0 ms of CPU per step at B=32,
 * H=256, more than the step's recurrent GEMM (0.5 ms); with a rational tanh 0.5 ms, as float8 0.13 ms. The
 * single-work-group kernels ({@link Kernels#SINGLE_GROUP}) run as one work-group of the whole grid, which this
 * backend launches with local size = global size; the schedule sends small batches there (see
 * {@code ScheduledRnn.persistentKernel}).
 */
public final class OpenClBackend implements DeviceBackend {
    public static final BackendProvider PROVIDER = new BackendProvider() {
        @Override
        public String name() {
            return "opencl";
        }

        @Override
        public Availability probe() {
            return OpenClDevice.probe();
        }

        @Override
        public Backend open() {
            Availability a = probe();
            if (!a.available()) throw new BackendUnavailableException("backend opencl is unavailable: " + a.detail());
            return new OpenClBackend(OpenClDevice.get(), defaultGemm());
        }
    };

    /** Which GEMM implementation to use: {@code hand} (default) or {@code clblast}. */
    static String defaultGemm() {
        return System.getProperty("recur.opencl.gemm", "hand").toLowerCase(Locale.ROOT);
    }

    private final OpenClDevice device;
    private final cl_command_queue queue;
    private final ClGemm gemm;
    private final Map<String, KernelInfo> kernels = new HashMap<>();
    // Concurrent: a forgotten buffer is released from the cleaner thread (see ClBuffer).
    private final Set<ClBuffer.Mem> live = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** See {@link #setMemoryLimit}; initially the system property {@value #MEMORY_LIMIT_PROPERTY}, if set. */
    private volatile long memoryLimit = Long.getLong(MEMORY_LIMIT_PROPERTY, Long.MAX_VALUE);
    /** System property: a cap in bytes on what each new backend may allocate (as {@link #setMemoryLimit}). */
    public static final String MEMORY_LIMIT_PROPERTY = "recur.opencl.memoryLimitBytes";
    private final AtomicLong inUse = new AtomicLong();
    private final dev.recur.backend.Traffic.Counter traffic = new dev.recur.backend.Traffic.Counter();
    private boolean closed;

    /**
     * A kernel object with the kind of each parameter (buffer, int or float) and the argument values last set on
     * it: OpenCL keeps arguments on the kernel object, so a launch sets only those that changed (in the time
     * loop usually just the step index).
     */
    private record KernelInfo(cl_kernel kernel, char[] kinds, Object[] last) {}

    /** Opens a backend with the named GEMM ({@code hand} or {@code clblast}). */
    public static OpenClBackend open(String gemmName) {
        BackendProvider.Availability a = OpenClDevice.probe();
        if (!a.available()) throw new BackendUnavailableException("backend opencl is unavailable: " + a.detail());
        return new OpenClBackend(OpenClDevice.get(), gemmName);
    }

    /**
     * A backend on the caller's own OpenCL objects, so that memory the caller already has ({@code cl_mem} on
     * {@code context}) can be {@link #wrap wrapped} without a copy and recur's work is ordered with the caller's
     * on one in-order {@code queue} (it must be a queue of {@code context} on {@code device}, created without
     * {@code CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE}). The kernels are built for this context (warm PoCL cache:
     * tens of milliseconds).
     *
     * <p>Lifetime: the caller keeps ownership of all three objects and releases them after closing this backend;
     * {@link #close()} waits for the queue, frees the buffers this backend allocated and its own kernels and
     * program, and releases none of the three. The shared default context of {@link #open(String)} is unaffected.
     */
    public static OpenClBackend open(cl_context context, cl_device_id device, cl_command_queue queue) {
        if (context == null) throw new IllegalArgumentException("context: must not be null");
        if (device == null) throw new IllegalArgumentException("device: must not be null");
        if (queue == null) throw new IllegalArgumentException("queue: must not be null");
        BackendProvider.Availability a = OpenClDevice.probe();
        if (!a.available()) throw new BackendUnavailableException("backend opencl is unavailable: " + a.detail());
        cl_context[] qctx = new cl_context[1];
        clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, Sizeof.cl_context, Pointer.to(qctx), null);
        cl_device_id[] qdev = new cl_device_id[1];
        clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, Sizeof.cl_device_id, Pointer.to(qdev), null);
        if (!qctx[0].equals(context)) throw new IllegalArgumentException("queue: expected a queue of the given context, got one of " + qctx[0]);
        if (!qdev[0].equals(device)) throw new IllegalArgumentException("queue: expected a queue on the given device, got one on " + qdev[0]);
        long[] props = new long[1];
        clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, Sizeof.cl_ulong, Pointer.to(props), null);
        if ((props[0] & CL_QUEUE_OUT_OF_MODE_EXEC_MODE_ENABLE_MASK) != 0) {
            throw new IllegalArgumentException("queue: expected an in-order queue, got one with out-of-order execution enabled");
        }
        OpenClDevice d = OpenClDevice.onCallerContext(context, device);
        try {
            return new OpenClBackend(d, defaultGemm(), queue);
        } catch (RuntimeException | Error e) {
            d.releaseProgram();
            throw e;
        }
    }

    private static final long CL_QUEUE_OUT_OF_MODE_EXEC_MODE_ENABLE_MASK = CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE;

    /** Whether {@link #queue} is this backend's own (released at close) or the caller's. */
    private final boolean ownsQueue;

    private OpenClBackend(OpenClDevice device, String gemmName) {
        this(device, gemmName, null);
    }

    private OpenClBackend(OpenClDevice device, String gemmName, cl_command_queue callerQueue) {
        this.device = device;
        device.program();
        this.ownsQueue = callerQueue == null;
        this.queue = callerQueue != null ? callerQueue : clCreateCommandQueue(device.context, device.device, 0, null);
        try {
            this.gemm = switch (gemmName) {
                case "hand" -> new HandGemm(device);
                case "clblast" -> {
                    try {
                        yield new ClBlastGemm();
                    } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
                        throw new BackendUnavailableException("opencl with recur.opencl.gemm=clblast: the CLBlast "
                                + "native library could not be loaded (" + e.getMessage() + ")", e);
                    }
                }
                default -> throw new IllegalArgumentException("recur.opencl.gemm: expected hand or clblast, got '"
                        + gemmName + "'");
            };
            for (String name : Kernels.ALL) kernels.put(name, kernelInfo(name));
            for (String name : Kernels.OPTIONAL) kernels.put(name, kernelInfo(name));
            for (String name : dev.recur.backend.AttentionKernels.ALL) kernels.put(name, kernelInfo(name));
            for (String name : dev.recur.backend.TrainKernels.ALL) kernels.put(name, kernelInfo(name));
        } catch (RuntimeException | Error e) {
            for (KernelInfo k : kernels.values()) clReleaseKernel(k.kernel);
            if (ownsQueue) clReleaseCommandQueue(queue);
            throw e;
        }
    }

    /** This backend's OpenCL context (the shared default one, or the caller's): for {@code clCreateBuffer} and interop. */
    public cl_context context() {
        return device.context;
    }

    /** This backend's OpenCL device. */
    public cl_device_id device() {
        return device.device;
    }

    /** This backend's in-order command queue: enqueue work ordered with recur's on it. */
    public cl_command_queue queue() {
        return queue;
    }

    /**
     * A buffer over a {@code cl_mem} the caller made on this backend's {@link #context()}, without a copy: kernels
     * read and write it in place. {@code elements} of {@code type} must fit in the memory object.
     *
     * <p>Lifetime: recur never releases a wrapped {@code cl_mem}. It takes no reference of its own either, so the
     * caller must keep the object until the buffer is closed and the work using it has finished
     * ({@link #finish()}); closing the buffer only detaches it. A wrapped buffer does not count in
     * {@link #memoryInUse()}.
     */
    public DeviceBuffer wrap(cl_mem mem, long elements, DeviceBuffer.Type type) {
        ensureOpen();
        if (mem == null) throw new IllegalArgumentException("mem: must not be null");
        if (type == null) throw new IllegalArgumentException("type: must not be null");
        cl_context[] ctx = new cl_context[1];
        clGetMemObjectInfo(mem, CL_MEM_CONTEXT, Sizeof.cl_context, Pointer.to(ctx), null);
        if (!ctx[0].equals(device.context)) {
            throw new IllegalArgumentException("mem: expected a memory object on this backend's context " + device.context
                    + ", got one on " + ctx[0] + " (open the backend on that context with OpenClBackend.open(context, "
                    + "device, queue))");
        }
        long[] size = new long[1];
        clGetMemObjectInfo(mem, CL_MEM_SIZE, Sizeof.size_t, Pointer.to(size), null);
        if (elements < 1 || elements * type.bytes() > size[0]) {
            throw new IllegalArgumentException("elements: expected 1 to " + size[0] / type.bytes() + " (the memory object's "
                    + size[0] + " bytes), got " + elements);
        }
        return new ClBuffer(this, type, elements, mem, true);
    }

    @Override
    public dev.recur.backend.Traffic traffic() {
        return traffic.read();
    }

    @Override
    public void upload(java.lang.foreign.MemorySegment src, long srcByteOff, DeviceBuffer dst, long dstOff, long count) {
        ensureOpen();
        DeviceBackend.checkSegmentRange("src", src, srcByteOff, count);
        ClBuffer d = check("dst", dst, null, dstOff, count);
        if (count == 0) return;
        // A heap segment has no address JOCL can take: the default stages it through an array.
        if (!src.isNative()) {
            DeviceBackend.super.upload(src, srcByteOff, dst, dstOff, count);
            return;
        }
        traffic.toDevice(count * 4);
        clEnqueueWriteBuffer(queue, d.mem(), CL_TRUE, dstOff * 4, count * 4, hostPointer(src, srcByteOff, count), 0, null, null);
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, java.lang.foreign.MemorySegment dst, long dstByteOff, long count) {
        ensureOpen();
        ClBuffer s = check("src", src, null, srcOff, count);
        DeviceBackend.checkSegmentRange("dst", dst, dstByteOff, count);
        if (dst.isReadOnly()) throw new IllegalArgumentException("dst: a read-only segment");
        if (count == 0) return;
        if (!dst.isNative()) {
            DeviceBackend.super.download(src, srcOff, dst, dstByteOff, count);
            return;
        }
        traffic.toHost(count * 4, true);
        clEnqueueReadBuffer(queue, s.mem(), CL_TRUE, srcOff * 4, count * 4, hostPointer(dst, dstByteOff, count), 0, null, null);
    }

    /** JOCL's pointer to native host memory, through its direct ByteBuffer view. */
    private static Pointer hostPointer(java.lang.foreign.MemorySegment seg, long byteOff, long count) {
        if (count * 4 > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("count: at most " + Integer.MAX_VALUE / 4 + " elements per copy, got " + count);
        }
        return Pointer.to(seg.asSlice(byteOff, count * 4).asByteBuffer());
    }

    private KernelInfo kernelInfo(String name) {
        cl_kernel k = clCreateKernel(device.program(), name, null);
        int[] n = new int[1];
        clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, Sizeof.cl_uint, Pointer.to(n), null);
        char[] kinds = new char[n[0]];
        for (int i = 0; i < n[0]; i++) {
            long[] size = new long[1];
            clGetKernelArgInfo(k, i, CL_KERNEL_ARG_TYPE_NAME, 0, null, size);
            byte[] buf = new byte[(int) size[0]];
            clGetKernelArgInfo(k, i, CL_KERNEL_ARG_TYPE_NAME, buf.length, Pointer.to(buf), null);
            String type = new String(buf, StandardCharsets.UTF_8).replace("\0", "").strip();
            kinds[i] = type.endsWith("*") ? 'b' : type.equals("float") ? 'f' : type.equals("int") ? 'i' : '?';
            if (kinds[i] == '?') {
                clReleaseKernel(k);
                throw new IllegalStateException("kernel " + name + ": parameter " + i + " has unsupported type " + type);
            }
        }
        return new KernelInfo(k, kinds, new Object[kinds.length]);
    }

    /** The GEMM implementation in use. */
    public String gemmName() {
        return gemm.name();
    }

    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public String deviceName() {
        return device.deviceName + " (" + device.platformName + ")";
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("OpenClBackend: used after close()");
    }

    @Override
    public DeviceBuffer allocate(DeviceBuffer.Type type, long elements) {
        ensureOpen();
        if (type == null) throw new IllegalArgumentException("type: must not be null");
        if (elements < 1) throw new IllegalArgumentException("elements: expected >= 1, got " + elements);
        long bytes = elements * type.bytes();
        long available = Math.max(0, Math.min(device.globalMemBytes - device.inUse.get(), memoryLimit - inUse.get()));
        if (bytes > available || bytes > device.maxAllocBytes) {
            throw new OutOfDeviceMemoryException("opencl", bytes, available,
                    bytes > device.maxAllocBytes ? "largest single allocation is " + device.maxAllocBytes + " bytes" : "");
        }
        cl_mem mem;
        try {
            mem = clCreateBuffer(device.context, CL_MEM_READ_WRITE, bytes, null, null);
        } catch (CLException e) {
            throw new OutOfDeviceMemoryException("opencl", bytes, available, e.getMessage());
        }
        ClBuffer b = new ClBuffer(this, type, elements, mem);
        live.add(b.state());
        inUse.addAndGet(bytes);
        device.inUse.addAndGet(bytes);
        return b;
    }

    void released(ClBuffer.Mem b) {
        if (live.remove(b)) {
            inUse.addAndGet(-b.bytes);
            device.inUse.addAndGet(-b.bytes);
        }
    }

    /**
     * Caps the bytes this backend's live buffers may hold (beyond the device's own size): an allocation past it
     * throws {@link OutOfDeviceMemoryException} naming requested and available bytes, as a full device would.
     * For running beside other users of a device, and for testing out-of-memory handling. {@code Long.MAX_VALUE}
     * removes the cap.
     */
    public void setMemoryLimit(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("bytes: expected >= 0, got " + bytes);
        this.memoryLimit = bytes;
    }

    private ClBuffer check(String arg, DeviceBuffer buf, DeviceBuffer.Type type, long off, long count) {
        if (buf == null) throw new IllegalArgumentException(arg + ": must not be null");
        if (!(buf instanceof ClBuffer cb) || cb.owner != this) {
            throw new IllegalArgumentException(arg + ": a buffer of another backend (" + buf + ")");
        }
        if (cb.isClosed()) throw new IllegalStateException(arg + ": buffer used after close()");
        if (type != null && cb.type != type) {
            throw new IllegalArgumentException(arg + ": expected a " + type + " buffer, got " + cb.type);
        }
        if (off < 0 || count < 0 || off + count > cb.size) {
            throw new IllegalArgumentException(arg + ": elements [" + off + ", " + (off + count) + ") outside a buffer of "
                    + cb.size);
        }
        return cb;
    }

    @Override
    public void upload(float[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        ensureOpen();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        ClBuffer d = check("dst", dst, DeviceBuffer.Type.F32, dstOff, count);
        if (count == 0) return;
        traffic.toDevice(count * 4L);
        clEnqueueWriteBuffer(queue, d.mem(), CL_TRUE, dstOff * 4, (long) count * 4,
                Pointer.to(src).withByteOffset((long) srcOff * 4), 0, null, null);
    }

    @Override
    public void upload(int[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        ensureOpen();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        ClBuffer d = check("dst", dst, DeviceBuffer.Type.I32, dstOff, count);
        if (count == 0) return;
        traffic.toDevice(count * 4L);
        clEnqueueWriteBuffer(queue, d.mem(), CL_TRUE, dstOff * 4, (long) count * 4,
                Pointer.to(src).withByteOffset((long) srcOff * 4), 0, null, null);
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, float[] dst, int dstOff, int count) {
        ensureOpen();
        ClBuffer s = check("src", src, DeviceBuffer.Type.F32, srcOff, count);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        if (count == 0) return;
        traffic.toHost(count * 4L, true);
        clEnqueueReadBuffer(queue, s.mem(), CL_TRUE, srcOff * 4, (long) count * 4,
                Pointer.to(dst).withByteOffset((long) dstOff * 4), 0, null, null);
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, int[] dst, int dstOff, int count) {
        ensureOpen();
        ClBuffer s = check("src", src, DeviceBuffer.Type.I32, srcOff, count);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        if (count == 0) return;
        traffic.toHost(count * 4L, true);
        clEnqueueReadBuffer(queue, s.mem(), CL_TRUE, srcOff * 4, (long) count * 4,
                Pointer.to(dst).withByteOffset((long) dstOff * 4), 0, null, null);
    }

    @Override
    public void fill(DeviceBuffer dst, long off, long count, double value) {
        ensureOpen();
        ClBuffer d = check("dst", dst, null, off, count);
        if (count == 0) return;
        Pointer pattern = d.type == DeviceBuffer.Type.F32 ? Pointer.to(new float[] {(float) value})
                : Pointer.to(new int[] {(int) value});
        clEnqueueFillBuffer(queue, d.mem(), pattern, 4, off * 4, count * 4, 0, null, null);
    }

    @Override
    public void copy(DeviceBuffer src, long srcOff, DeviceBuffer dst, long dstOff, long count) {
        ensureOpen();
        ClBuffer s = check("src", src, null, srcOff, count);
        ClBuffer d = check("dst", dst, s.type, dstOff, count);
        if (count == 0) return;
        if (s == d && srcOff < dstOff + count && dstOff < srcOff + count) {
            throw new IllegalArgumentException("copy: overlapping ranges in one buffer (src " + srcOff + ", dst " + dstOff
                    + ", count " + count + ")");
        }
        clEnqueueCopyBuffer(queue, s.mem(), d.mem(), srcOff * 4, dstOff * 4, count * 4, 0, null, null);
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, DeviceBuffer a, long offA,
                     int lda, DeviceBuffer b, long offB, int ldb, float beta, DeviceBuffer c, long offC, int ldc) {
        gemmStridedBatched(transA, transB, m, n, k, alpha, a, offA, lda, 0, b, offB, ldb, 0, beta, c, offC, ldc, 0, 1);
    }

    @Override
    public void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha,
                                   DeviceBuffer a, long offA, int lda, long strideA,
                                   DeviceBuffer b, long offB, int ldb, long strideB,
                                   float beta, DeviceBuffer c, long offC, int ldc, long strideC, int batch) {
        ensureOpen();
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("gemm: m, n, k must be >= 0, got " + m + ", " + n + ", " + k);
        if (batch < 1) throw new IllegalArgumentException("batch: expected >= 1, got " + batch);
        if (lda < Math.max(1, transA ? m : k)) throw new IllegalArgumentException("lda: expected >= " + (transA ? m : k) + ", got " + lda);
        if (ldb < Math.max(1, transB ? k : n)) throw new IllegalArgumentException("ldb: expected >= " + (transB ? k : n) + ", got " + ldb);
        if (ldc < Math.max(1, n)) throw new IllegalArgumentException("ldc: expected >= " + n + ", got " + ldc);
        if (m == 0 || n == 0) return;
        ClBuffer cb = check("c", c, DeviceBuffer.Type.F32, offC + (batch - 1) * strideC, (long) (m - 1) * ldc + n);
        if (k == 0) {
            // C = beta*C: the GEMM kernels handle it (an empty sum), no reads of A or B.
            check("a", a, DeviceBuffer.Type.F32, 0, 0);
            check("b", b, DeviceBuffer.Type.F32, 0, 0);
        } else {
            long aRows = transA ? k : m, aCols = transA ? m : k;
            long bRows = transB ? n : k, bCols = transB ? k : n;
            check("a", a, DeviceBuffer.Type.F32, offA + (batch - 1) * strideA, (aRows - 1) * lda + aCols);
            check("b", b, DeviceBuffer.Type.F32, offB + (batch - 1) * strideB, (bRows - 1) * ldb + bCols);
        }
        ClBuffer ab = (ClBuffer) a, bb = (ClBuffer) b;
        ClGemm g = k == 0 ? hand() : gemm;
        g.gemm(queue, transA, transB, m, n, k, alpha, ab.mem(), offA, lda, strideA, bb.mem(), offB, ldb, strideB,
                beta, cb.mem(), offC, ldc, strideC, batch);
    }

    private HandGemm handForEdgeCases;

    private ClGemm hand() {
        if (gemm instanceof HandGemm) return gemm;
        if (handForEdgeCases == null) handForEdgeCases = new HandGemm(device);
        return handForEdgeCases;
    }

    @Override
    public void launch(String name, long[] globalSize, Object... args) {
        ensureOpen();
        KernelInfo ki = kernels.get(name);
        if (ki == null) throw new IllegalArgumentException("kernel: no kernel named '" + name + "' in " + Kernels.ALL);
        if (globalSize == null || globalSize.length < 1 || globalSize.length > 3) {
            throw new IllegalArgumentException("kernel " + name + ": globalSize must have 1 to 3 extents, got "
                    + (globalSize == null ? "null" : globalSize.length));
        }
        for (int i = 0; i < globalSize.length; i++) {
            if (globalSize[i] < 1) {
                throw new IllegalArgumentException("kernel " + name + ": globalSize[" + i + "] must be >= 1, got " + globalSize[i]);
            }
        }
        boolean singleGroup = Kernels.SINGLE_GROUP.contains(name);
        if (singleGroup && (globalSize.length != 1 || globalSize[0] > device.maxWorkGroup)) {
            throw new IllegalArgumentException("kernel " + name + ": a single work-group kernel needs a 1-D grid of at "
                    + "most " + device.maxWorkGroup + " work items, got " + java.util.Arrays.toString(globalSize));
        }
        if (args.length != ki.kinds.length) {
            throw new IllegalArgumentException("kernel " + name + ": expected " + ki.kinds.length + " arguments, got " + args.length);
        }
        cl_kernel k = ki.kernel;
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            // Buffers compare by identity (a ClBuffer's cl_mem never changes), numbers by value.
            if (a != null && a.equals(ki.last[i]) && !(a instanceof ClBuffer cb0 && cb0.isClosed())) continue;
            ki.last[i] = null;
            switch (ki.kinds[i]) {
                case 'b' -> {
                    if (!(a instanceof DeviceBuffer db)) throw badArg(name, i, "a DeviceBuffer", a);
                    ClBuffer cb = check("kernel " + name + " argument " + i, db, null, 0, 0);
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(cb.mem()));
                }
                case 'i' -> {
                    if (!(a instanceof Integer v)) throw badArg(name, i, "an Integer", a);
                    clSetKernelArg(k, i, Sizeof.cl_int, Pointer.to(new int[] {v}));
                }
                case 'f' -> {
                    if (!(a instanceof Float v)) throw badArg(name, i, "a Float", a);
                    clSetKernelArg(k, i, Sizeof.cl_float, Pointer.to(new float[] {v}));
                }
                default -> throw new IllegalStateException("kernel " + name + ": parameter kind " + ki.kinds[i]);
            }
            ki.last[i] = a;
        }
        long[] global = globalSize.clone();
        if (singleGroup) {
            clEnqueueNDRangeKernel(queue, k, 1, null, global, global.clone(), 0, null, null);
            return;
        }
        long[] local = new long[global.length];
        java.util.Arrays.fill(local, 1);
        // One fixed work-group shape: PoCL compiles a kernel once per local size, so letting the runtime pick
        // one per grid would recompile for every new shape. Kernels ignore the rounded-up work items.
        long lx = device.localX;
        local[0] = lx;
        global[0] = (global[0] + lx - 1) / lx * lx;
        clEnqueueNDRangeKernel(queue, k, global.length, null, global, local, 0, null, null);
    }


    private static IllegalArgumentException badArg(String kernel, int i, String expected, Object got) {
        return new IllegalArgumentException("kernel " + kernel + ": argument " + i + " must be " + expected + ", got "
                + (got == null ? "null" : got.getClass().getSimpleName() + " " + got));
    }

    /** Every optional kernel runs here (PoCL and GPUs alike run one work-group with barriers). */
    @Override
    public boolean supports(String kernel) {
        if (Kernels.SINGLE_GROUP.contains(kernel)) return device.maxWorkGroup >= PERSIST_MIN_GROUP;
        return Kernels.OPTIONAL.contains(kernel);
    }

    /** The work-group size the schedule asks of single-group kernels; a device below it gets the per-step path. */
    private static final long PERSIST_MIN_GROUP = 256;

    @Override
    public void finish() {
        ensureOpen();
        traffic.waited();
        clFinish(queue);
    }

    @Override
    public long memoryInUse() {
        return inUse.get();
    }

    @Override
    public void close() {
        if (closed) return;
        try {
            clFinish(queue);
        } finally {
            closed = true;
            for (ClBuffer.Mem b : live.toArray(new ClBuffer.Mem[0])) b.release();
            for (KernelInfo k : kernels.values()) clReleaseKernel(k.kernel);
            kernels.clear();
            gemm.close();
            if (handForEdgeCases != null) handForEdgeCases.close();
            if (ownsQueue) clReleaseCommandQueue(queue);
            device.releaseProgram();
        }
    }
}
