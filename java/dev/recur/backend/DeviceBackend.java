package dev.recur.backend;

/**
 * The contract of a device backend ({@code opencl}, {@code cuda}, {@code cpu}): it supplies memory, GEMM
 * and named kernel launches, and nothing else. Everything an RNN is made of (the loop over time, directions,
 * layers, lengths, what training saves, the backward pass) lives once in the shared schedule
 * ({@code dev.recur.schedule.ScheduledRnn}, {@code AttentionSchedule}), written against this interface only, and
 * every device backend runs it unchanged.
 *
 * <h2>Ordering</h2>
 * Every operation is issued to one in-order stream: an operation sees the results of every operation issued
 * before it. {@code upload*} may return before the copy has happened only if it has taken its own copy of
 * the host data (the caller may overwrite the array on return); {@code download*} returns when the host
 * array holds the data (it waits for all earlier work). {@link #finish()} waits for everything issued.
 * A backend is used by one thread at a time ({@code Rnn} and {@code Attention} ensure it with {@link BackendLocks});
 * only {@link DeviceBuffer#close()} may come from another thread (the GC safety net of {@link Leaks}).
 *
 * <h2>Argument checks</h2>
 * Implementations throw {@link IllegalArgumentException} naming the argument for a buffer of the wrong
 * type, a buffer of another backend, or an element range outside a buffer, before anything is issued;
 * {@link IllegalStateException} for a closed buffer or backend.
 *
 * <h2>Kernels</h2>
 * {@link #launch(String, long[], Object...)} runs the named kernel over a 1–3 dimensional grid of work
 * items. The names, argument lists and launch shapes are part of this contract, listed in {@link Kernels} and
 * {@link AttentionKernels}; their bodies are written once in {@code kernels/common/*.h}, their entry points once in {@code kernels/entry/*.h},
 * which {@code kernels/opencl/*.cl} and {@code kernels/cuda/*.cu} include; a backend without a compiler (the {@code cpu} backend) implements each name
 * as Java code computing the same thing from the same argument list. A backend may run a grid rounded up in
 * any dimension: every kernel ignores work items whose index is outside the extents it is given as
 * arguments. Work items of one launch are independent (no kernel relies on a work-group size or on
 * synchronisation between work items), so any order or parallel split is correct; the only exceptions are the
 * optional {@link Kernels#SINGLE_GROUP} kernels, launched only where {@link #supports(String)} says so.
 *
 * <h2>Memory</h2>
 * {@link #memoryInUse()} counts the bytes of the live buffers this backend allocated through
 * {@link #allocate} (not its own internal scratch); tests use it to show that nothing leaks. An allocation
 * that does not fit throws {@link OutOfDeviceMemoryException} naming requested and available bytes.
 * {@link DeviceTensor} puts a shape (and views) on a buffer. A backend may also wrap memory the caller already has
 * ({@code CpuBackend.wrap(MemorySegment, ...)}, {@code OpenClBackend.wrap(cl_mem, ...)},
 * {@code CudaBackend.wrap(devicePointer, ...)}): such a buffer is used in place, never freed by the backend (closing
 * it only detaches it) and not counted in {@link #memoryInUse()}; the caller frees the memory after closing the
 * buffer and after the work using it has finished.
 *
 * <h2>Traffic</h2>
 * {@link #traffic()} counts what crossed between host and device ({@link Traffic}): bytes of every {@code upload*}
 * and {@code download*}, and every wait of the host for the device (a download, {@link #finish()}). Device-side
 * copies, fills, GEMMs and kernels are not traffic.
 */
public interface DeviceBackend extends Backend {

    /** A new buffer of {@code elements} elements (at least 1) with unspecified contents. */
    DeviceBuffer allocate(DeviceBuffer.Type type, long elements);

    /** Copies {@code count} floats from {@code src[srcOff..]} to {@code dst[dstOff..]} (an F32 buffer). */
    void upload(float[] src, int srcOff, DeviceBuffer dst, long dstOff, int count);

    /** Copies {@code count} ints from {@code src[srcOff..]} to {@code dst[dstOff..]} (an I32 buffer). */
    void upload(int[] src, int srcOff, DeviceBuffer dst, long dstOff, int count);

    /** Copies {@code count} floats from the F32 buffer {@code src[srcOff..]} into {@code dst[dstOff..]}. */
    void download(DeviceBuffer src, long srcOff, float[] dst, int dstOff, int count);

    /** Copies {@code count} ints from the I32 buffer {@code src[srcOff..]} into {@code dst[dstOff..]}. */
    void download(DeviceBuffer src, long srcOff, int[] dst, int dstOff, int count);

    /**
     * Copies {@code count} float64 values from {@code src[srcOff..]} to the F32 buffer {@code dst[dstOff..]},
     * rounded to float32 (host tensors are float64). The default converts into one float[] and uploads it.
     */
    default void uploadDoubles(double[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        float[] f = new float[count];
        for (int i = 0; i < count; i++) f[i] = (float) src[srcOff + i];
        upload(f, 0, dst, dstOff, count);
    }

    /** Copies {@code count} floats from the F32 buffer {@code src[srcOff..]} into {@code dst[dstOff..]} as float64. */
    default void downloadDoubles(DeviceBuffer src, long srcOff, double[] dst, int dstOff, int count) {
        checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        float[] f = new float[count];
        download(src, srcOff, f, 0, count);
        for (int i = 0; i < count; i++) dst[dstOff + i] = f[i];
    }

    /**
     * Checks the host-array range of an upload or download before anything is copied: {@code array} (of
     * {@code length} elements) must exist and hold {@code [off, off + count)}. The message names the argument.
     */
    static void checkHostRange(String arg, Object array, int length, int off, int count) {
        if (array == null) throw new IllegalArgumentException(arg + ": must not be null");
        if (off < 0 || count < 0 || (long) off + count > length) {
            throw new IllegalArgumentException(arg + ": elements [" + off + ", " + ((long) off + count)
                    + ") outside an array of " + length);
        }
    }

    /**
     * Sets {@code count} elements from {@code off} to {@code value} (converted to the buffer's type: F32 takes
     * {@code (float) value}, I32 takes {@code (int) value}).
     */
    void fill(DeviceBuffer dst, long off, long count, double value);

    /** Copies {@code count} elements between buffers of the same type; the ranges must not overlap if same buffer. */
    void copy(DeviceBuffer src, long srcOff, DeviceBuffer dst, long dstOff, long count);

    /**
     * Row-major single-precision GEMM: {@code C = alpha * op(A) * op(B) + beta * C}, with {@code C} an
     * {@code m x n} matrix whose element (i, j) is {@code c[offC + i*ldc + j]}.
     * <ul>
     *   <li>{@code op(A)} is {@code m x k}: without {@code transA} its (i, p) is {@code a[offA + i*lda + p]}
     *       ({@code lda >= k}); with {@code transA} it is {@code a[offA + p*lda + i]} ({@code lda >= m}).</li>
     *   <li>{@code op(B)} is {@code k x n}: without {@code transB} its (p, j) is {@code b[offB + p*ldb + j]}
     *       ({@code ldb >= n}); with {@code transB} it is {@code b[offB + j*ldb + p]} ({@code ldb >= k}).</li>
     *   <li>{@code beta == 0} overwrites C without reading it (NaN or garbage in C does not propagate).
     *       {@code k == 0} gives {@code C = beta*C}. {@code m == 0} or {@code n == 0} does nothing.</li>
     * </ul>
     * All three buffers are F32; C must not overlap A or B.
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k,
              float alpha, DeviceBuffer a, long offA, int lda,
              DeviceBuffer b, long offB, int ldb,
              float beta, DeviceBuffer c, long offC, int ldc);

    /**
     * {@code batch} independent {@link #gemm}s: GEMM number {@code q} uses offsets {@code offA + q*strideA},
     * {@code offB + q*strideB}, {@code offC + q*strideC}. A stride may be 0 for A or B (the same matrix in
     * every GEMM) but the C matrices must not overlap each other.
     */
    void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k,
                            float alpha, DeviceBuffer a, long offA, int lda, long strideA,
                            DeviceBuffer b, long offB, int ldb, long strideB,
                            float beta, DeviceBuffer c, long offC, int ldc, long strideC,
                            int batch);

    /**
     * Runs kernel {@code name} over the grid {@code globalSize} (1 to 3 extents, each >= 1; dimension 0 is
     * the fastest-varying work-item index). Each argument is a {@link DeviceBuffer}, an {@link Integer}
     * (int32) or a {@link Float} (float32), in the kernel's parameter order. Throws
     * {@link IllegalArgumentException} for an unknown name, a wrong argument count, or an argument of the
     * wrong kind, naming the kernel and the argument position.
     */
    void launch(String name, long[] globalSize, Object... args);

    /**
     * Whether this backend runs the optional kernel {@code kernel} (one of {@link Kernels#SINGLE_GROUP}: a grid
     * run as exactly one work-group, with barriers). The schedule launches an optional kernel only when this is
     * true and otherwise uses the per-step kernels every backend has; the default supports none.
     */
    default boolean supports(String kernel) {
        return false;
    }

    /**
     * Whether this backend's {@link Kernels#SINGLE_GROUP} kernels use the whole device (every core) rather than one
     * work-group on one core: the schedule's automatic mode then runs them at every size, not only where launch
     * costs dominate. The default is false (a GPU or PoCL work-group is one multiprocessor or core).
     */
    default boolean sequenceKernelsScale() {
        return false;
    }

    /**
     * Copies {@code count} elements from the host memory {@code src} (from byte offset {@code srcByteOff}; native
     * or heap, laid out in native byte order) to {@code dst[dstOff..]}, as {@code upload} does for arrays. The
     * default stages the data through a float[] (or int[]); the cpu and OpenCL backends copy straight from the
     * segment.
     */
    default void upload(java.lang.foreign.MemorySegment src, long srcByteOff, DeviceBuffer dst, long dstOff, long count) {
        checkSegmentRange("src", src, srcByteOff, count);
        if (dst == null) throw new IllegalArgumentException("dst: must not be null");
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("count: at most " + Integer.MAX_VALUE + " elements per copy, got " + count);
        }
        if (dst.type() == DeviceBuffer.Type.F32) {
            float[] a = new float[(int) count];
            java.lang.foreign.MemorySegment.copy(src, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, srcByteOff, a, 0, a.length);
            upload(a, 0, dst, dstOff, a.length);
        } else {
            int[] a = new int[(int) count];
            java.lang.foreign.MemorySegment.copy(src, java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, srcByteOff, a, 0, a.length);
            upload(a, 0, dst, dstOff, a.length);
        }
    }

    /** Copies {@code count} elements from {@code src[srcOff..]} into host memory {@code dst} at byte offset {@code dstByteOff}. */
    default void download(DeviceBuffer src, long srcOff, java.lang.foreign.MemorySegment dst, long dstByteOff, long count) {
        if (src == null) throw new IllegalArgumentException("src: must not be null");
        checkSegmentRange("dst", dst, dstByteOff, count);
        if (dst.isReadOnly()) throw new IllegalArgumentException("dst: a read-only segment");
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("count: at most " + Integer.MAX_VALUE + " elements per copy, got " + count);
        }
        if (src.type() == DeviceBuffer.Type.F32) {
            float[] a = new float[(int) count];
            download(src, srcOff, a, 0, a.length);
            java.lang.foreign.MemorySegment.copy(a, 0, dst, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, dstByteOff, a.length);
        } else {
            int[] a = new int[(int) count];
            download(src, srcOff, a, 0, a.length);
            java.lang.foreign.MemorySegment.copy(a, 0, dst, java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, dstByteOff, a.length);
        }
    }

    /** Checks that {@code segment} holds {@code count} 4-byte elements from byte {@code byteOff}, naming the argument. */
    static void checkSegmentRange(String arg, java.lang.foreign.MemorySegment segment, long byteOff, long count) {
        if (segment == null) throw new IllegalArgumentException(arg + ": must not be null");
        if (byteOff < 0 || count < 0 || byteOff + count * 4 > segment.byteSize()) {
            throw new IllegalArgumentException(arg + ": bytes [" + byteOff + ", " + (byteOff + count * 4)
                    + ") outside a segment of " + segment.byteSize() + " bytes");
        }
    }

    /**
     * Host↔device bytes and blocking waits since this backend was opened ({@link Traffic}). The cpu and OpenCL
     * backends count them; the default throws, naming the backend, for one that does not (cuda, until its
     * rewrite onto {@code java.lang.foreign} lands).
     */
    default Traffic traffic() {
        throw new UnsupportedOperationException(name() + ": this backend does not count host-device traffic");
    }

    /** Waits until every issued operation has completed; reports asynchronous failures. */
    void finish();

    /** Bytes held by live buffers from {@link #allocate}. */
    long memoryInUse();

    /** An allocation that does not fit on the device; names what was asked for and what was left. */
    final class OutOfDeviceMemoryException extends RuntimeException {
        private final long requestedBytes;
        private final long availableBytes;

        public OutOfDeviceMemoryException(String backend, long requestedBytes, long availableBytes, String detail) {
            super(backend + ": cannot allocate " + requestedBytes + " bytes of device memory, " + availableBytes
                    + " bytes available" + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"));
            this.requestedBytes = requestedBytes;
            this.availableBytes = availableBytes;
        }

        public long requestedBytes() {
            return requestedBytes;
        }

        public long availableBytes() {
            return availableBytes;
        }
    }
}
