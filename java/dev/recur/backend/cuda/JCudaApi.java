package dev.recur.backend.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasStatus;
import jcuda.nvrtc.JNvrtc;
import jcuda.nvrtc.nvrtcProgram;
import jcuda.nvrtc.nvrtcResult;
import jcuda.runtime.cudaStream_t;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The second binding: JCuda's JNI jars ({@code -Drecur.cuda.binding=jcuda}). Its natives link
 * {@code libcublas.so.12} and {@code libnvrtc.so.12} and exist for linux-x86_64 only, so it serves CUDA 12
 * machines and cross-checks the default {@link PanamaCuda}. It never calls JCuda's process-wide
 * {@code setExceptionsEnabled}: every status is checked here, and JCuda's exceptions stay off as they are by default.
 * Nothing of JCuda is loaded unless this binding is chosen.
 */
final class JCudaApi extends CudaBinding {
    private static final Pattern MISSING_SO = Pattern.compile("(lib[\\w.+-]+?\\.so(?:\\.\\d+)*): cannot open shared object file");
    /** JCuda keeps device addresses in NativePointerObject's private field; the seam passes them as longs. */
    private static final VarHandle NATIVE_POINTER;

    static {
        try {
            NATIVE_POINTER = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup())
                    .findVarHandle(NativePointerObject.class, "nativePointer", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private record H<T>(T v) implements Context, Stream, Event, Module, Function, Blas {}

    /** Page-locked host allocations by address, for cuMemFreeHost. */
    private final Map<Long, Pointer> hostPointers = new ConcurrentHashMap<>();

    /** What to add when the binding is chosen without its jars (they are optional dependencies of recur). */
    static final String MISSING_JARS = "add org.jcuda:jcuda and org.jcuda:jcublas 12.6.0 to the class path";

    @Override
    public String binding() {
        return "jcuda";
    }

    @Override
    String tryLoad(Part part) {
        String cls, lib, what;
        switch (part) {
            case DRIVER -> {
                cls = "jcuda.driver.JCudaDriver";
                lib = "libcuda.so.1";
                what = "the NVIDIA driver";
            }
            case NVRTC -> {
                cls = "jcuda.nvrtc.JNvrtc";
                lib = "libnvrtc.so.12";
                what = "NVRTC from a CUDA 12 toolkit, as JCuda needs";
            }
            default -> {
                cls = "jcuda.jcublas.JCublas2";
                lib = "libcublas.so.12";
                what = "cuBLAS from a CUDA 12 toolkit, as JCuda needs";
            }
        }
        try {
            Class.forName(cls, true, JCudaApi.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            return cls + " is not on the class path: " + MISSING_JARS;
        } catch (LinkageError e) {
            return missingLibrary(e, lib, what);
        } catch (RuntimeException e) {
            // JCuda extracts its JNI library to java.io.tmpdir first; an unwritable folder surfaces here.
            return lib + " could not be loaded (" + what + "): " + firstLine(e);
        }
        try {
            switch (part) {
                case DRIVER -> {
                    String jcuda = JCudaDriver.class.getPackage().getImplementationVersion();
                    loaded(new Library("driver", lib + (jcuda == null ? "" : " (JCuda " + jcuda + ")"),
                            "CUDA " + CudaProbe.version(driverVersion())));
                }
                case NVRTC -> {
                    int[] v = nvrtcVersion();
                    loaded(new Library("nvrtc", lib, v[0] + "." + v[1]));
                }
                case CUBLAS -> {
                    int v = cublasVersion();
                    loaded(new Library("cublas", lib, v / 10000 + "." + v / 100 % 100 + "." + v % 100));
                }
            }
        } catch (LinkageError e) {
            // A JCuda jar and a native library of different versions: name the symbol rather than fail later.
            return "JCuda native library mismatch for " + lib + ": " + firstLine(e);
        }
        return null;
    }

    /**
     * The reason a native library did not load. The dynamic loader names the first library it could not find;
     * JCuda hides it in the message of a nested error, and on a second attempt only says that the class could not
     * be initialised, so the expected library is named in that case.
     */
    static String missingLibrary(Throwable e, String expected, String what) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            Matcher matcher = MISSING_SO.matcher(String.valueOf(t.getMessage()));
            if (matcher.find()) return matcher.group(1) + " not found (" + what + ")";
        }
        if (e instanceof NoClassDefFoundError) return expected + " not loadable (" + what + "): " + firstLine(e);
        return expected + " could not be loaded (" + what + "): " + firstLine(e);
    }

    private static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (nl < 0 ? m : m.substring(0, nl));
    }

    @SuppressWarnings("unchecked")
    private static <T> T v(Object handle) {
        return ((H<T>) handle).v();
    }

    private static CUdeviceptr dptr(long address) {
        CUdeviceptr p = new CUdeviceptr();
        NATIVE_POINTER.set((NativePointerObject) p, address);
        return p;
    }

    private static Pointer host(MemorySegment segment) {
        return Pointer.to(segment.asByteBuffer());
    }

    private void check(int status, String call) {
        if (status != 0) throw new CudaException("driver", call, status, errorName(status), errorString(status));
    }

    // ---- driver ----

    @Override
    public void init() {
        check(JCudaDriver.cuInit(0), "cuInit");
    }

    @Override
    public int driverVersion() {
        int[] v = {0};
        check(JCudaDriver.cuDriverGetVersion(v), "cuDriverGetVersion");
        return v[0];
    }

    String errorName(int status) {
        String[] s = {null};
        return JCudaDriver.cuGetErrorName(status, s) == 0 ? s[0] : null;
    }

    String errorString(int status) {
        String[] s = {null};
        return JCudaDriver.cuGetErrorString(status, s) == 0 ? s[0] : null;
    }

    @Override
    public int deviceCount() {
        int[] n = {0};
        check(JCudaDriver.cuDeviceGetCount(n), "cuDeviceGetCount");
        return n[0];
    }

    private CUdevice dev(int ordinal) {
        CUdevice d = new CUdevice();
        check(JCudaDriver.cuDeviceGet(d, ordinal), "cuDeviceGet(" + ordinal + ")");
        return d;
    }

    @Override
    public DeviceInfo device(int ordinal) {
        CUdevice d = dev(ordinal);
        int[] major = {0}, minor = {0}, sms = {0};
        check(JCudaDriver.cuDeviceGetAttribute(major, 75, d), "cuDeviceGetAttribute");
        check(JCudaDriver.cuDeviceGetAttribute(minor, 76, d), "cuDeviceGetAttribute");
        check(JCudaDriver.cuDeviceGetAttribute(sms, 16, d), "cuDeviceGetAttribute");
        byte[] name = new byte[256];
        check(JCudaDriver.cuDeviceGetName(name, name.length, d), "cuDeviceGetName");
        int n = 0;
        while (n < name.length && name[n] != 0) n++;
        long[] total = {0};
        check(JCudaDriver.cuDeviceTotalMem(total, d), "cuDeviceTotalMem");
        return new DeviceInfo(ordinal, new String(name, 0, n, java.nio.charset.StandardCharsets.UTF_8), major[0], minor[0], total[0], sms[0]);
    }

    @Override
    public Context retainPrimaryContext(int ordinal) {
        CUcontext c = new CUcontext();
        check(JCudaDriver.cuDevicePrimaryCtxRetain(c, dev(ordinal)), "cuDevicePrimaryCtxRetain");
        return new H<>(c);
    }

    @Override
    public void releasePrimaryContext(int ordinal) {
        check(JCudaDriver.cuDevicePrimaryCtxRelease(dev(ordinal)), "cuDevicePrimaryCtxRelease");
    }

    @Override
    public void setCurrent(Context context) {
        check(JCudaDriver.cuCtxSetCurrent(JCudaApi.<CUcontext>v(context)), "cuCtxSetCurrent");
    }

    @Override
    public long memAlloc(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        check(JCudaDriver.cuMemAlloc(p, bytes), "cuMemAlloc(" + bytes + " bytes)");
        return (long) NATIVE_POINTER.get((NativePointerObject) p);
    }

    @Override
    public void memFree(long address) {
        check(JCudaDriver.cuMemFree(dptr(address)), "cuMemFree");
    }

    @Override
    public long[] memInfo() {
        long[] free = {0}, total = {0};
        check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {free[0], total[0]};
    }

    @Override
    public MemorySegment hostAlloc(long bytes) {
        Pointer p = new Pointer();
        check(JCudaDriver.cuMemHostAlloc(p, bytes, 0), "cuMemHostAlloc(" + bytes + " bytes)");
        MemorySegment s = MemorySegment.ofBuffer(p.getByteBuffer(0, bytes));
        hostPointers.put(s.address(), p);
        return s;
    }

    @Override
    public void hostFree(MemorySegment segment) {
        Pointer p = hostPointers.remove(segment.address());
        if (p == null) throw new IllegalArgumentException("hostFree: " + segment + " was not allocated by hostAlloc");
        check(JCudaDriver.cuMemFreeHost(p), "cuMemFreeHost");
    }

    @Override
    public void copyHtoD(long dst, MemorySegment src, long bytes, Stream stream) {
        check(JCudaDriver.cuMemcpyHtoDAsync(dptr(dst), host(src), bytes, v(stream)), "cuMemcpyHtoDAsync");
    }

    @Override
    public void copyDtoH(MemorySegment dst, long src, long bytes, Stream stream) {
        check(JCudaDriver.cuMemcpyDtoHAsync(host(dst), dptr(src), bytes, v(stream)), "cuMemcpyDtoHAsync");
    }

    @Override
    public void copyDtoD(long dst, long src, long bytes, Stream stream) {
        check(JCudaDriver.cuMemcpyDtoDAsync(dptr(dst), dptr(src), bytes, v(stream)), "cuMemcpyDtoDAsync");
    }

    @Override
    public void memsetD32(long dst, int bits, long count, Stream stream) {
        check(JCudaDriver.cuMemsetD32Async(dptr(dst), bits, count, v(stream)), "cuMemsetD32Async");
    }

    @Override
    public Stream streamCreate() {
        CUstream s = new CUstream();
        check(JCudaDriver.cuStreamCreate(s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
        return new H<>(s);
    }

    @Override
    public void streamSynchronize(Stream stream) {
        check(JCudaDriver.cuStreamSynchronize(v(stream)), "cuStreamSynchronize");
    }

    @Override
    public void streamDestroy(Stream stream) {
        check(JCudaDriver.cuStreamDestroy(v(stream)), "cuStreamDestroy");
    }

    @Override
    public Event eventCreate(boolean timing) {
        CUevent e = new CUevent();
        check(JCudaDriver.cuEventCreate(e, timing ? 0 : 2), "cuEventCreate");
        return new H<>(e);
    }

    @Override
    public void eventRecord(Event event, Stream stream) {
        check(JCudaDriver.cuEventRecord(v(event), v(stream)), "cuEventRecord");
    }

    @Override
    public void eventSynchronize(Event event) {
        check(JCudaDriver.cuEventSynchronize(v(event)), "cuEventSynchronize");
    }

    @Override
    public float eventElapsed(Event start, Event end) {
        float[] ms = {0};
        check(JCudaDriver.cuEventElapsedTime(ms, v(start), v(end)), "cuEventElapsedTime");
        return ms[0];
    }

    @Override
    public void eventDestroy(Event event) {
        check(JCudaDriver.cuEventDestroy(v(event)), "cuEventDestroy");
    }

    @Override
    public Module moduleLoad(byte[] image) {
        CUmodule m = new CUmodule();
        check(JCudaDriver.cuModuleLoadData(m, image), "cuModuleLoadData");
        return new H<>(m);
    }

    @Override
    public void moduleUnload(Module module) {
        check(JCudaDriver.cuModuleUnload(v(module)), "cuModuleUnload");
    }

    @Override
    public Function function(Module module, String name) {
        CUfunction f = new CUfunction();
        check(JCudaDriver.cuModuleGetFunction(f, v(module), name), "cuModuleGetFunction(" + name + ")");
        return new H<>(f);
    }

    @Override
    public int maxThreadsPerBlock(Function function) {
        int[] n = {0};
        check(JCudaDriver.cuFuncGetAttribute(n, 0, v(function)), "cuFuncGetAttribute");
        return n[0];
    }

    @Override
    public void launch(Function function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                       Stream stream, Object[] args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case Long a -> Pointer.to(new long[] {a});
                case Integer a -> Pointer.to(new int[] {a});
                case Float a -> Pointer.to(new float[] {a});
                default -> throw new IllegalArgumentException("argument " + i + ": expected a Long, Integer or Float, got " + args[i]);
            };
        }
        check(JCudaDriver.cuLaunchKernel(v(function), gridX, gridY, gridZ, blockX, blockY, blockZ, 0, v(stream),
                Pointer.to(params), null), "cuLaunchKernel");
    }

    // ---- NVRTC ----

    @Override
    public int[] nvrtcVersion() {
        int[] major = {0}, minor = {0};
        int r = JNvrtc.nvrtcVersion(major, minor);
        if (r != 0) throw new CudaException("NVRTC", "nvrtcVersion", r, nvrtcResult.stringFor(r), null);
        return new int[] {major[0], minor[0]};
    }

    @Override
    public int[] nvrtcArchs() {
        int[] n = {0};
        if (JNvrtc.nvrtcGetNumSupportedArchs(n) != 0 || n[0] == 0) return new int[0];
        int[] archs = new int[n[0]];
        if (JNvrtc.nvrtcGetSupportedArchs(archs) != 0) return new int[0];
        java.util.Arrays.sort(archs);
        return archs;
    }

    @Override
    public NvrtcOutput nvrtcCompile(String name, String source, Map<String, String> headers, List<String> options, boolean cubin) {
        String[] names = headers.keySet().toArray(String[]::new);
        String[] texts = headers.values().toArray(String[]::new);
        nvrtcProgram program = new nvrtcProgram();
        int r = JNvrtc.nvrtcCreateProgram(program, source, name, names.length, texts, names);
        if (r != 0) throw new CudaException("NVRTC", "nvrtcCreateProgram(" + name + ")", r, nvrtcResult.stringFor(r), null);
        try {
            int status = JNvrtc.nvrtcCompileProgram(program, options.size(), options.toArray(String[]::new));
            String[] log = {""};
            if (JNvrtc.nvrtcGetProgramLog(program, log) != 0 || log[0] == null) log[0] = "";
            if (status != 0) return new NvrtcOutput(status, nvrtcResult.stringFor(status), log[0], null, null);
            String[] ptx = {null};
            r = JNvrtc.nvrtcGetPTX(program, ptx);
            if (r != 0) throw new CudaException("NVRTC", "nvrtcGetPTX(" + name + ")", r, nvrtcResult.stringFor(r), null);
            byte[] bin = null;
            if (cubin) {
                long[] size = {0};
                r = JNvrtc.nvrtcGetCUBINSize(program, size);
                if (r != 0) throw new CudaException("NVRTC", "nvrtcGetCUBINSize(" + name + ")", r, nvrtcResult.stringFor(r), null);
                bin = new byte[Math.toIntExact(size[0])];
                r = JNvrtc.nvrtcGetCUBIN(program, bin);
                if (r != 0) throw new CudaException("NVRTC", "nvrtcGetCUBIN(" + name + ")", r, nvrtcResult.stringFor(r), null);
            }
            return new NvrtcOutput(0, "NVRTC_SUCCESS", log[0], ptx[0], bin);
        } finally {
            JNvrtc.nvrtcDestroyProgram(program);
        }
    }

    // ---- cuBLAS ----

    private static void checkBlas(int s, String call) {
        if (s != 0) throw new CudaException("cuBLAS", call, s, cublasStatus.stringFor(s), null);
    }

    private int cublasVersion() {
        int[] major = {0}, minor = {0}, patch = {0};
        checkBlas(JCublas2.cublasGetProperty(0, major), "cublasGetProperty");
        checkBlas(JCublas2.cublasGetProperty(1, minor), "cublasGetProperty");
        checkBlas(JCublas2.cublasGetProperty(2, patch), "cublasGetProperty");
        return major[0] * 10000 + minor[0] * 100 + patch[0];
    }

    @Override
    public Blas blasCreate() {
        cublasHandle h = new cublasHandle();
        checkBlas(JCublas2.cublasCreate(h), "cublasCreate");
        return new H<>(h);
    }

    @Override
    public void blasDestroy(Blas blas) {
        checkBlas(JCublas2.cublasDestroy(v(blas)), "cublasDestroy");
    }

    @Override
    public void blasSetStream(Blas blas, Stream stream) {
        checkBlas(JCublas2.cublasSetStream(v(blas), new cudaStream_t(JCudaApi.<CUstream>v(stream))), "cublasSetStream");
    }

    @Override
    public void blasDefaultMath(Blas blas) {
        checkBlas(JCublas2.cublasSetMathMode(v(blas), 0), "cublasSetMathMode");
    }

    @Override
    public void sgemm(Blas blas, CublasGemm g, float alpha, long first, long second, float beta, long c) {
        Pointer pa = Pointer.to(new float[] {alpha});
        Pointer pb = Pointer.to(new float[] {beta});
        int op1 = g.transFirst() ? 1 : 0;
        int op2 = g.transSecond() ? 1 : 0;
        if (g.batch() == 1) {
            checkBlas(JCublas2.cublasSgemm(v(blas), op1, op2, g.m(), g.n(), g.k(), pa, dptr(first), g.ldFirst(),
                    dptr(second), g.ldSecond(), pb, dptr(c), g.ldc()), "cublasSgemm");
        } else {
            checkBlas(JCublas2.cublasSgemmStridedBatched(v(blas), op1, op2, g.m(), g.n(), g.k(), pa, dptr(first), g.ldFirst(),
                    g.strideFirst(), dptr(second), g.ldSecond(), g.strideSecond(), pb, dptr(c), g.ldc(), g.strideC(), g.batch()),
                    "cublasSgemmStridedBatched");
        }
    }
}
