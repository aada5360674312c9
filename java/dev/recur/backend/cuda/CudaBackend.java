package dev.recur.backend.cuda;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.BackendUnavailableException;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcublas.cublasOperation;
import jcuda.jcublas.cublasStatus;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The CUDA backend: device memory through the driver API, GEMM through cuBLAS, and the kernels of
 * {@code kernels/cuda/*.cu} compiled with NVRTC for the device's own architecture at first use (cached on
 * disk, see {@link KernelCache}). It holds no scheduling logic: the shared schedule drives it through
 * {@link DeviceBackend} exactly as it drives OpenCL.
 *
 * <p>Everything is issued to the context's legacy default stream, which cuBLAS also uses, so operations
 * run in issue order; the host copies are synchronous with respect to the host arrays.
 */
public final class CudaBackend implements DeviceBackend {
    private static final String NAME = "cuda";
    /** Threads per block; kernels bounds-check every index, so grids are rounded up to whole blocks. */
    private static final int BLOCK_THREADS = 256;
    private static final long MAX_GRID_X = Integer.MAX_VALUE;
    private static final long MAX_GRID_YZ = 65535;

    /** Probes for the driver, cuBLAS, NVRTC and a device; reports the missing library by name. */
    public static final BackendProvider PROVIDER = new BackendProvider() {
        @Override
        public String name() {
            return NAME;
        }

        @Override
        public Availability probe() {
            return CudaProbe.result().availability();
        }

        @Override
        public Backend open() {
            CudaProbe.Result r = CudaProbe.result();
            if (!r.available()) throw new BackendUnavailableException("backend cuda is unavailable: " + r.detail());
            return new CudaBackend(r);
        }
    };

    /**
     * A loaded kernel, the parameter kinds its PTX declares, and the most threads a block of it may have
     * (fewer than 1024 when its registers would not fit: a 128-register kernel allows 512).
     */
    private record Kernel(String name, CUfunction function, List<PtxEntries.Kind> params, int maxThreads) {}

    private final CudaProbe.Result device;
    private final CUdevice cuDevice = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final cublasHandle cublas = new cublasHandle();
    private final NvrtcCompiler compiler;
    private final NvrtcCompiler.Target target;
    private final Map<String, CudaKernelSources.Unit> unitsByKernel;
    private final Map<String, CUmodule> modules = new HashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();
    private final Set<CudaBuffer> live = Collections.newSetFromMap(new IdentityHashMap<>());
    private long memoryInUse;
    private boolean closed;

    private CudaBackend(CudaProbe.Result device) {
        this.device = device;
        JCudaDriver.setExceptionsEnabled(false);
        JCublas2.setExceptionsEnabled(false);
        check(JCudaDriver.cuDeviceGet(cuDevice, 0), "cuDeviceGet");
        check(JCudaDriver.cuDevicePrimaryCtxRetain(context, cuDevice), "cuDevicePrimaryCtxRetain");
        boolean ok = false;
        try {
            check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
            int s = JCublas2.cublasCreate(cublas);
            if (s != cublasStatus.CUBLAS_STATUS_SUCCESS) {
                throw new BackendUnavailableException("backend cuda is unavailable: cublasCreate failed: " + cublasStatus.stringFor(s));
            }
            try {
                // Full float32 GEMMs: TF32 tensor-core math would break parity with the float64 reference.
                checkBlas(JCublas2.cublasSetMathMode(cublas, cublasMath.CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
                this.compiler = new NvrtcCompiler(KernelCache.standard());
                this.target = compiler.target(device.major() * 10 + device.minor());
                this.unitsByKernel = CudaKernelSources.byKernel(CudaKernelSources.load());
                ok = true;
            } finally {
                if (!ok) JCublas2.cublasDestroy(cublas);
            }
        } finally {
            if (!ok) JCudaDriver.cuDevicePrimaryCtxRelease(cuDevice);
        }
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String deviceName() {
        return device.deviceName() + " (sm_" + device.major() + device.minor() + ", kernels "
                + (target.cubin() ? "compiled for " + target.label() : "as compute_" + target.arch() + " PTX for the driver's JIT") + ")";
    }

    // ---- memory ----

    @Override
    public DeviceBuffer allocate(DeviceBuffer.Type type, long elements) {
        open();
        if (type == null) throw new IllegalArgumentException("cuda allocate: type must not be null");
        if (elements < 1) throw new IllegalArgumentException("cuda allocate: elements: expected >= 1, got " + elements);
        long bytes = Math.multiplyExact(elements, (long) type.bytes());
        CUdeviceptr ptr = new CUdeviceptr();
        int r = JCudaDriver.cuMemAlloc(ptr, bytes);
        if (r == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            long[] free = {0};
            long[] total = {0};
            JCudaDriver.cuMemGetInfo(free, total);
            throw new OutOfDeviceMemoryException(NAME, bytes, free[0],
                    "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY; " + total[0] + " bytes on " + device.deviceName()
                            + ", " + memoryInUse + " held by this backend");
        }
        check(r, "cuMemAlloc(" + bytes + " bytes)");
        CudaBuffer b = new CudaBuffer(this, type, elements, ptr);
        live.add(b);
        memoryInUse += bytes;
        return b;
    }

    /**
     * A buffer over device memory the caller already has ({@code devicePointer}, e.g. from {@code cuMemAlloc} or a
     * PyTorch tensor's {@code data_ptr()}, in this backend's context), without a copy. Lifetime: recur never frees
     * it; the caller keeps the memory until the buffer is closed and the work using it has finished. It does not
     * count in {@link #memoryInUse()}.
     */
    public DeviceBuffer wrap(long devicePointer, long elements, DeviceBuffer.Type type) {
        open();
        if (devicePointer == 0 || devicePointer % 4 != 0) {
            throw new IllegalArgumentException("devicePointer: expected a non-null address aligned to 4 bytes, got 0x"
                    + Long.toHexString(devicePointer));
        }
        if (type == null) throw new IllegalArgumentException("type: must not be null");
        if (elements < 1) throw new IllegalArgumentException("elements: expected >= 1, got " + elements);
        return new CudaBuffer(this, type, elements, new CUdeviceptr().withByteOffset(devicePointer), true);
    }

    void free(CudaBuffer b, CUdeviceptr ptr) {
        if (!live.remove(b)) return;
        memoryInUse -= b.bytes();
        if (!closed) {
            makeCurrent();
            check(JCudaDriver.cuMemFree(ptr), "cuMemFree");
        }
    }

    @Override
    public long memoryInUse() {
        return memoryInUse;
    }

    /** Free and total bytes on the device, from {@code cuMemGetInfo}. */
    public long[] deviceMemoryInfo() {
        open();
        long[] free = {0};
        long[] total = {0};
        check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {free[0], total[0]};
    }

    @Override
    public void upload(float[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        open();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        CudaBuffer d = buffer("dst", dst, DeviceBuffer.Type.F32);
        checkRange("dst", d, dstOff, count);
        if (count == 0) return;
        check(JCudaDriver.cuMemcpyHtoD(d.at(dstOff), Pointer.to(src).withByteOffset(4L * srcOff), 4L * count), "cuMemcpyHtoD");
    }

    @Override
    public void upload(int[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        open();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        CudaBuffer d = buffer("dst", dst, DeviceBuffer.Type.I32);
        checkRange("dst", d, dstOff, count);
        if (count == 0) return;
        check(JCudaDriver.cuMemcpyHtoD(d.at(dstOff), Pointer.to(src).withByteOffset(4L * srcOff), 4L * count), "cuMemcpyHtoD");
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, float[] dst, int dstOff, int count) {
        open();
        CudaBuffer s = buffer("src", src, DeviceBuffer.Type.F32);
        checkRange("src", s, srcOff, count);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        if (count == 0) return;
        check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOff), s.at(srcOff), 4L * count), "cuMemcpyDtoH");
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, int[] dst, int dstOff, int count) {
        open();
        CudaBuffer s = buffer("src", src, DeviceBuffer.Type.I32);
        checkRange("src", s, srcOff, count);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        if (count == 0) return;
        check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOff), s.at(srcOff), 4L * count), "cuMemcpyDtoH");
    }

    @Override
    public void fill(DeviceBuffer dst, long off, long count, double value) {
        open();
        CudaBuffer d = buffer("dst", dst, null);
        checkRange("dst", d, off, count);
        if (count == 0) return;
        int bits = d.type() == DeviceBuffer.Type.F32 ? Float.floatToRawIntBits((float) value) : (int) value;
        check(JCudaDriver.cuMemsetD32Async(d.at(off), bits, count, null), "cuMemsetD32Async");
    }

    @Override
    public void copy(DeviceBuffer src, long srcOff, DeviceBuffer dst, long dstOff, long count) {
        open();
        CudaBuffer s = buffer("src", src, null);
        CudaBuffer d = buffer("dst", dst, s.type());
        checkRange("src", s, srcOff, count);
        checkRange("dst", d, dstOff, count);
        if (s == d && srcOff < dstOff + count && dstOff < srcOff + count) {
            throw new IllegalArgumentException("cuda copy: src [" + srcOff + ", " + (srcOff + count) + ") and dst ["
                    + dstOff + ", " + (dstOff + count) + ") overlap in the same buffer");
        }
        if (count == 0) return;
        check(JCudaDriver.cuMemcpyDtoDAsync(d.at(dstOff), s.at(srcOff), 4L * count, null), "cuMemcpyDtoDAsync");
    }

    // ---- GEMM ----

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k,
                     float alpha, DeviceBuffer a, long offA, int lda,
                     DeviceBuffer b, long offB, int ldb,
                     float beta, DeviceBuffer c, long offC, int ldc) {
        gemmStridedBatched(transA, transB, m, n, k, alpha, a, offA, lda, 0, b, offB, ldb, 0, beta, c, offC, ldc, 0, 1);
    }

    /** Row-major through column-major cuBLAS, operands swapped: see {@link CublasGemm}. */
    @Override
    public void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k,
                                   float alpha, DeviceBuffer a, long offA, int lda, long strideA,
                                   DeviceBuffer b, long offB, int ldb, long strideB,
                                   float beta, DeviceBuffer c, long offC, int ldc, long strideC,
                                   int batch) {
        open();
        if (m < 0) throw new IllegalArgumentException("cuda gemm: m: expected >= 0, got " + m);
        if (n < 0) throw new IllegalArgumentException("cuda gemm: n: expected >= 0, got " + n);
        if (k < 0) throw new IllegalArgumentException("cuda gemm: k: expected >= 0, got " + k);
        if (batch < 0) throw new IllegalArgumentException("cuda gemm: batch: expected >= 0, got " + batch);
        if (strideA < 0) throw new IllegalArgumentException("cuda gemm: strideA: expected >= 0, got " + strideA);
        if (strideB < 0) throw new IllegalArgumentException("cuda gemm: strideB: expected >= 0, got " + strideB);
        if (strideC < 0) throw new IllegalArgumentException("cuda gemm: strideC: expected >= 0, got " + strideC);
        CudaBuffer ba = buffer("a", a, DeviceBuffer.Type.F32);
        CudaBuffer bb = buffer("b", b, DeviceBuffer.Type.F32);
        CudaBuffer bc = buffer("c", c, DeviceBuffer.Type.F32);
        checkMatrix("a", ba, offA, lda, strideA, batch, transA ? k : m, transA ? m : k);
        checkMatrix("b", bb, offB, ldb, strideB, batch, transB ? n : k, transB ? k : n);
        checkMatrix("c", bc, offC, ldc, strideC, batch, m, n);
        if (m == 0 || n == 0 || batch == 0) return;
        CublasGemm g = CublasGemm.of(transA, transB, m, n, k, lda, ldb, ldc);
        Pointer pAlpha = Pointer.to(new float[] {alpha});
        Pointer pBeta = Pointer.to(new float[] {beta});
        int op1 = g.transFirst() ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        int op2 = g.transSecond() ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        int s;
        if (batch == 1) {
            s = JCublas2.cublasSgemm(cublas, op1, op2, g.m(), g.n(), g.k(), pAlpha, bb.at(offB), g.ldFirst(),
                    ba.at(offA), g.ldSecond(), pBeta, bc.at(offC), g.ldc());
        } else {
            s = JCublas2.cublasSgemmStridedBatched(cublas, op1, op2, g.m(), g.n(), g.k(), pAlpha, bb.at(offB), g.ldFirst(),
                    strideB, ba.at(offA), g.ldSecond(), strideA, pBeta, bc.at(offC), g.ldc(), strideC, batch);
        }
        checkBlas(s, batch == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched");
    }

    // ---- kernels ----

    @Override
    public void launch(String name, long[] globalSize, Object... args) {
        open();
        if (name == null) throw new IllegalArgumentException("cuda launch: kernel name must not be null");
        if (globalSize == null || globalSize.length < 1 || globalSize.length > 3) {
            throw new IllegalArgumentException("cuda launch " + name + ": globalSize: expected 1 to 3 extents, got "
                    + (globalSize == null ? "null" : globalSize.length));
        }
        for (int i = 0; i < globalSize.length; i++) {
            if (globalSize[i] < 1) {
                throw new IllegalArgumentException("cuda launch " + name + ": globalSize[" + i + "]: expected >= 1, got " + globalSize[i]);
            }
        }
        Kernel kernel = kernel(name);
        Object[] argv = args == null ? new Object[0] : args;
        if (argv.length != kernel.params().size()) {
            throw new IllegalArgumentException("cuda launch " + name + ": expected " + kernel.params().size()
                    + " arguments, got " + argv.length);
        }
        Pointer[] params = new Pointer[argv.length];
        for (int i = 0; i < argv.length; i++) params[i] = argument(name, i, kernel.params().get(i), argv[i]);

        long gx = globalSize[0];
        long gy = globalSize.length > 1 ? globalSize[1] : 1;
        long gz = globalSize.length > 2 ? globalSize[2] : 1;
        int[] block = blockShape(gx, gy, gz, kernel.maxThreads());
        long nx = ceilDiv(gx, block[0]);
        long ny = ceilDiv(gy, block[1]);
        long nz = ceilDiv(gz, block[2]);
        if (nx > MAX_GRID_X || ny > MAX_GRID_YZ || nz > MAX_GRID_YZ) {
            throw new IllegalArgumentException("cuda launch " + name + ": globalSize " + java.util.Arrays.toString(globalSize)
                    + " needs a grid of " + nx + " x " + ny + " x " + nz + " blocks of " + block[0] + " x " + block[1]
                    + " x " + block[2] + "; CUDA allows at most " + MAX_GRID_X + " x " + MAX_GRID_YZ + " x " + MAX_GRID_YZ);
        }
        check(JCudaDriver.cuLaunchKernel(kernel.function(), (int) nx, (int) ny, (int) nz, block[0], block[1], block[2],
                0, null, Pointer.to(params), null), "cuLaunchKernel(" + name + ")");
    }

    /**
     * Threads per block in x, y, z: up to 256 (or the kernel's limit), as wide in x as the grid needs (at
     * least a warp), the rest in y. Only when y or z would need more than CUDA's 65535 blocks do the blocks
     * grow in that dimension (up to 64 in z), taking threads from y or x when the kernel's limit is reached,
     * e.g. {@code gather_hprev}'s {@code T*D} for very long sequences. When even that cannot fit, the grid
     * check in {@link #launch} reports it.
     */
    static int[] blockShape(long gx, long gy, long gz, int maxThreads) {
        int limit = Integer.highestOneBit(Math.max(1, Math.min(1024, maxThreads)));
        int base = Math.min(BLOCK_THREADS, limit);
        int bx = (int) Math.min(base, Math.max(Math.min(32, base), ceilPow2(gx)));
        int by = (int) Math.min(base / bx, ceilPow2(gy));
        int bz = 1;
        while (ceilDiv(gz, bz) > MAX_GRID_YZ && bz < 64) {
            if (bx * by * bz * 2 > limit) {
                if (by > 1 && ceilDiv(gy, by / 2) <= MAX_GRID_YZ) by /= 2;
                else if (bx > 1) bx /= 2;
                else break;
            }
            bz *= 2;
        }
        while (ceilDiv(gy, by) > MAX_GRID_YZ) {
            if (bx * by * bz * 2 > limit) {
                if (bx > 1) bx /= 2;
                else break;
            }
            by *= 2;
        }
        return new int[] {bx, by, bz};
    }

    private Pointer argument(String kernel, int i, PtxEntries.Kind kind, Object arg) {
        switch (kind) {
            case POINTER -> {
                if (!(arg instanceof DeviceBuffer)) throw wrongArgument(kernel, i, "a DeviceBuffer", arg);
                return Pointer.to(buffer("argument " + i + " of " + kernel, (DeviceBuffer) arg, null).at(0));
            }
            case INT -> {
                if (!(arg instanceof Integer v)) throw wrongArgument(kernel, i, "an Integer", arg);
                return Pointer.to(new int[] {v});
            }
            case FLOAT -> {
                if (!(arg instanceof Float v)) throw wrongArgument(kernel, i, "a Float", arg);
                return Pointer.to(new float[] {v});
            }
            default -> throw new IllegalStateException("unknown parameter kind " + kind);
        }
    }

    private static IllegalArgumentException wrongArgument(String kernel, int i, String expected, Object got) {
        return new IllegalArgumentException("cuda launch " + kernel + ": argument " + i + ": expected " + expected + ", got "
                + (got == null ? "null" : got.getClass().getSimpleName() + " " + got));
    }

    /** The named kernel, compiling and loading its unit at first use. */
    private Kernel kernel(String name) {
        Kernel k = kernels.get(name);
        if (k != null) return k;
        CudaKernelSources.Unit unit = unitsByKernel.get(name);
        if (unit == null) {
            throw new IllegalArgumentException("cuda launch: unknown kernel '" + name + "'; kernels/cuda defines "
                    + unitsByKernel.keySet());
        }
        NvrtcCompiler.Compiled compiled = compiler.compile(unit, target);
        String ptx = compiled.ptx();
        CUmodule module = modules.get(unit.name());
        if (module == null) {
            module = load(unit, compiled);
            modules.put(unit.name(), module);
        }
        Map<String, List<PtxEntries.Kind>> entries = PtxEntries.parse(ptx);
        for (String kname : unit.kernels()) {
            List<PtxEntries.Kind> params = entries.get(kname);
            if (params == null) {
                throw new CudaKernelCompileException("kernels/cuda/" + unit.name() + " compiled without an entry point "
                        + kname + " (found " + entries.keySet() + ")", "");
            }
            CUfunction fn = new CUfunction();
            check(JCudaDriver.cuModuleGetFunction(fn, module, kname), "cuModuleGetFunction(" + kname + ")");
            int[] maxThreads = {0};
            check(JCudaDriver.cuFuncGetAttribute(maxThreads, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn),
                    "cuFuncGetAttribute(" + kname + ")");
            kernels.put(kname, new Kernel(kname, fn, params, maxThreads[0]));
        }
        return kernels.get(name);
    }

    /** Loads the CUBIN, or the PTX when there is none or the driver refuses the CUBIN. */
    private CUmodule load(CudaKernelSources.Unit unit, NvrtcCompiler.Compiled compiled) {
        CUmodule module = new CUmodule();
        String cubinError = null;
        if (compiled.cubin() != null) {
            int r = JCudaDriver.cuModuleLoadData(module, compiled.cubin());
            if (r == CUresult.CUDA_SUCCESS) return module;
            cubinError = "the CUBIN failed with " + CUresult.stringFor(r);
        }
        byte[] bytes = (compiled.ptx() + '\0').getBytes(StandardCharsets.UTF_8);
        int r = JCudaDriver.cuModuleLoadData(module, bytes);
        if (r == CUresult.CUDA_SUCCESS) return module;
        String hint = r == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION
                ? ": the PTX from " + compiler.version() + " is newer than this driver (CUDA " + device.driverVersion() / 1000
                + "." + device.driverVersion() % 1000 / 10 + ") accepts; update the driver"
                : "";
        throw new CudaKernelCompileException("cuModuleLoadData(kernels/cuda/" + unit.name() + ", " + target.label() + ") failed: "
                + (cubinError == null ? "" : cubinError + ", then ") + "the PTX failed with " + CUresult.stringFor(r) + hint, "");
    }

    @Override
    public void finish() {
        open();
        check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (an earlier asynchronous operation failed)");
    }

    @Override
    public void close() {
        if (closed) return;
        makeCurrent();
        List<String> errors = new ArrayList<>();
        for (CudaBuffer b : new ArrayList<>(live)) {
            try {
                b.close();
            } catch (RuntimeException e) {
                errors.add(e.getMessage());
            }
        }
        closed = true;
        for (CUmodule m : modules.values()) JCudaDriver.cuModuleUnload(m);
        modules.clear();
        kernels.clear();
        JCublas2.cublasDestroy(cublas);
        JCudaDriver.cuDevicePrimaryCtxRelease(cuDevice);
        if (!errors.isEmpty()) throw new IllegalStateException("cuda close: " + String.join("; ", errors));
    }

    // ---- checks ----

    private void open() {
        if (closed) throw new IllegalStateException("cuda backend is closed");
        makeCurrent();
    }

    /** The context must be current on the calling thread; a backend may move between threads over its life. */
    private void makeCurrent() {
        check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    private CudaBuffer buffer(String arg, DeviceBuffer b, DeviceBuffer.Type type) {
        if (b == null) throw new IllegalArgumentException("cuda: " + arg + " must not be null");
        if (!(b instanceof CudaBuffer cb) || cb.owner() != this) {
            throw new IllegalArgumentException("cuda: " + arg + " belongs to another backend (" + b + ")");
        }
        if (type != null && b.type() != type) {
            throw new IllegalArgumentException("cuda: " + arg + ": expected a " + type + " buffer, got " + b.type());
        }
        if (b.isClosed()) throw new IllegalStateException("cuda: " + arg + " is closed");
        return cb;
    }

    private static void checkRange(String arg, CudaBuffer b, long off, long count) {
        if (off < 0 || count < 0 || off > b.size() - count) {
            throw new IllegalArgumentException("cuda: " + arg + ": elements [" + off + ", " + (off + count)
                    + ") are outside the buffer of " + b.size());
        }
    }

    /** A row-major {@code rows x cols} matrix at {@code off} with leading dimension {@code ld}, {@code batch} times. */
    private static void checkMatrix(String arg, CudaBuffer buf, long off, int ld, long stride, int batch, int rows, int cols) {
        if (off < 0) throw new IllegalArgumentException("cuda gemm: off" + arg.toUpperCase() + ": expected >= 0, got " + off);
        if (cols > 0 && ld < cols) {
            throw new IllegalArgumentException("cuda gemm: ld" + arg + ": expected >= " + cols + ", got " + ld);
        }
        if (rows == 0 || cols == 0 || batch == 0) return;
        long last = off + (long) (batch - 1) * stride + (long) (rows - 1) * ld + cols - 1;
        if (last >= buf.size()) {
            throw new IllegalArgumentException("cuda gemm: " + arg + ": the " + rows + " x " + cols + " matrix"
                    + (batch > 1 ? " (batch " + batch + ", stride " + stride + ")" : "") + " at offset " + off
                    + " with ld " + ld + " reaches element " + last + ", outside the buffer of " + buf.size());
        }
    }

    static long ceilPow2(long v) {
        return v <= 1 ? 1 : Long.highestOneBit(v - 1) << 1;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static void check(int r, String call) {
        if (r != CUresult.CUDA_SUCCESS) throw new IllegalStateException("cuda: " + call + " failed: " + CUresult.stringFor(r));
    }

    private static void checkBlas(int s, String call) {
        if (s != cublasStatus.CUBLAS_STATUS_SUCCESS) {
            throw new IllegalStateException("cuda: " + call + " failed: " + cublasStatus.stringFor(s));
        }
    }
}
