package dev.recur.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API, NVRTC and cuBLAS through {@code java.lang.foreign}: no native jars, any CUDA 12 or 13
 * install, x86_64 and aarch64 alike (only C types of fixed width are used: {@code size_t},
 * {@code CUdeviceptr} and {@code long long} are 64-bit on both).
 *
 * <p>The driver is {@code libcuda.so.1}; its entry points come from {@code cuGetProcAddress_v2} (or
 * {@code cuGetProcAddress} on a driver older than CUDA 12.5) at {@link #API_VERSION}, so each name resolves to the
 * ABI this file was written against (e.g. {@code cuMemAlloc} to {@code cuMemAlloc_v2}) on any newer driver.
 * NVRTC and cuBLAS are found by {@link CudaLibraries}.
 */
// Binding native libraries is what this class is for: every restricted call (library lookup, downcall, reinterpreting
// a returned pointer) is here; the launcher, the jar manifest and surefire enable native access for it.
@SuppressWarnings("restricted")
final class PanamaCuda extends CudaBinding {
    /** The CUDA version whose function signatures the descriptors below spell out. */
    static final int API_VERSION = 12000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final String[] CUBLAS_STATUS = new String[17];

    static {
        CUBLAS_STATUS[0] = "CUBLAS_STATUS_SUCCESS";
        CUBLAS_STATUS[1] = "CUBLAS_STATUS_NOT_INITIALIZED";
        CUBLAS_STATUS[3] = "CUBLAS_STATUS_ALLOC_FAILED";
        CUBLAS_STATUS[7] = "CUBLAS_STATUS_INVALID_VALUE";
        CUBLAS_STATUS[8] = "CUBLAS_STATUS_ARCH_MISMATCH";
        CUBLAS_STATUS[11] = "CUBLAS_STATUS_MAPPING_ERROR";
        CUBLAS_STATUS[13] = "CUBLAS_STATUS_EXECUTION_FAILED";
        CUBLAS_STATUS[14] = "CUBLAS_STATUS_INTERNAL_ERROR";
        CUBLAS_STATUS[15] = "CUBLAS_STATUS_NOT_SUPPORTED";
        CUBLAS_STATUS[16] = "CUBLAS_STATUS_LICENSE_ERROR";
    }

    private record Handle(MemorySegment ptr) implements Context, Stream, Event, Module, Function, Blas {}

    private final CudaLibraries search;
    private Driver driver;
    private Nvrtc nvrtc;
    private Cublas cublas;

    PanamaCuda(CudaLibraries search) {
        this.search = search;
    }

    @Override
    public String binding() {
        return "panama";
    }

    @Override
    String tryLoad(Part part) {
        CudaLibraries.Spec spec = switch (part) {
            case DRIVER -> CudaLibraries.DRIVER;
            case NVRTC -> CudaLibraries.NVRTC;
            case CUBLAS -> CudaLibraries.CUBLAS;
        };
        List<String> failures = new ArrayList<>();
        for (CudaLibraries.Candidate c : search.candidates(spec, Files::isRegularFile)) {
            SymbolLookup lookup;
            try {
                for (Path s : c.siblings()) SymbolLookup.libraryLookup(s, Arena.global());
                lookup = c.file() == null ? SymbolLookup.libraryLookup(c.soname(), Arena.global())
                        : SymbolLookup.libraryLookup(c.file(), Arena.global());
            } catch (IllegalArgumentException e) {
                // Not there, or there but not loadable (wrong architecture, a missing dependency): try the next.
                if (c.file() != null) failures.add(c.describe() + ": " + firstLine(e.getMessage()));
                continue;
            }
            try {
                String where = c.file() == null ? c.soname() + " (system loader)" : c.file().toString();
                switch (part) {
                    case DRIVER -> {
                        driver = new Driver(lookup);
                        loaded(new Library("driver", where, "CUDA " + CudaProbe.version(driver.version())));
                    }
                    case NVRTC -> {
                        nvrtc = new Nvrtc(lookup);
                        int[] v = nvrtc.version();
                        loaded(new Library("nvrtc", where, v[0] + "." + v[1]));
                    }
                    case CUBLAS -> {
                        cublas = new Cublas(lookup);
                        loaded(new Library("cublas", where, cublas.versionString()));
                    }
                }
                return null;
            } catch (RuntimeException e) {
                // A library of the right name without the entry points this binding needs (too old): say which.
                failures.add(c.describe() + ": " + firstLine(e.getMessage()));
            }
        }
        return search.notFound(spec) + (failures.isEmpty() ? "" : "; not loadable: " + String.join("; ", failures));
    }

    private static String firstLine(String m) {
        if (m == null) return "";
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    private Driver driver() {
        String why = load(Part.DRIVER);
        if (why != null) throw new IllegalStateException(why);
        return driver;
    }

    private Nvrtc nvrtc() {
        String why = load(Part.NVRTC);
        if (why != null) throw new IllegalStateException(why);
        return nvrtc;
    }

    private Cublas cublas() {
        String why = load(Part.CUBLAS);
        if (why != null) throw new IllegalStateException(why);
        return cublas;
    }

    private static MemorySegment ptr(Object handle) {
        return ((Handle) handle).ptr();
    }

    private static MethodHandle bind(SymbolLookup lookup, String name, FunctionDescriptor fd) {
        MemorySegment sym = lookup.find(name).orElseThrow(() -> new IllegalStateException("no symbol " + name));
        return LINKER.downcallHandle(sym, fd);
    }

    private static String cString(MemorySegment p) {
        return p.equals(MemorySegment.NULL) ? null : p.reinterpret(Long.MAX_VALUE).getString(0, StandardCharsets.UTF_8);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    // ================= driver =================

    private static final FunctionDescriptor I_I = FunctionDescriptor.of(JAVA_INT, JAVA_INT);
    private static final FunctionDescriptor I_A = FunctionDescriptor.of(JAVA_INT, ADDRESS);
    private static final FunctionDescriptor I_L = FunctionDescriptor.of(JAVA_INT, JAVA_LONG);
    private static final FunctionDescriptor I_AI = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT);
    private static final FunctionDescriptor I_AA = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
    private static final FunctionDescriptor I_AL = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG);

    /** The driver's entry points, resolved once. */
    private static final class Driver {
        final MethodHandle init, driverGetVersion, deviceGetCount, deviceGet, deviceGetName, deviceGetAttribute,
                deviceTotalMem, primaryRetain, primaryRelease, ctxSetCurrent, memAlloc, memFree,
                memGetInfo, memHostAlloc, memFreeHost, htod, dtoh, dtod, memsetD32, streamCreate, streamSynchronize,
                streamDestroy, eventCreate, eventRecord, eventSynchronize, eventElapsed, eventDestroy, moduleLoadData,
                moduleUnload, moduleGetFunction, funcGetAttribute, launch, errorName, errorString;
        private final MethodHandle getProc;
        private final boolean getProcV2;

        Driver(SymbolLookup lib) {
            Optional<MemorySegment> v2 = lib.find("cuGetProcAddress_v2");
            getProcV2 = v2.isPresent();
            getProc = getProcV2
                    ? LINKER.downcallHandle(v2.get(), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS))
                    : bind(lib, "cuGetProcAddress", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG));
            // Exported under these names since CUDA 2/4; resolved directly so that an error can be named even when
            // cuGetProcAddress itself fails.
            errorName = bind(lib, "cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
            errorString = bind(lib, "cuGetErrorString", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
            driverGetVersion = bind(lib, "cuDriverGetVersion", I_A);
            init = proc("cuInit", I_I);
            deviceGetCount = proc("cuDeviceGetCount", I_A);
            deviceGet = proc("cuDeviceGet", I_AI);
            deviceGetName = proc("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
            deviceGetAttribute = proc("cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
            deviceTotalMem = proc("cuDeviceTotalMem", I_AI);
            primaryRetain = proc("cuDevicePrimaryCtxRetain", I_AI);
            primaryRelease = proc("cuDevicePrimaryCtxRelease", I_I);
            ctxSetCurrent = proc("cuCtxSetCurrent", I_A);
            memAlloc = proc("cuMemAlloc", I_AL);
            memFree = proc("cuMemFree", I_L);
            memGetInfo = proc("cuMemGetInfo", I_AA);
            memHostAlloc = proc("cuMemHostAlloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
            memFreeHost = proc("cuMemFreeHost", I_A);
            htod = proc("cuMemcpyHtoDAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
            dtoh = proc("cuMemcpyDtoHAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
            dtod = proc("cuMemcpyDtoDAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
            memsetD32 = proc("cuMemsetD32Async", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS));
            streamCreate = proc("cuStreamCreate", I_AI);
            streamSynchronize = proc("cuStreamSynchronize", I_A);
            streamDestroy = proc("cuStreamDestroy", I_A);
            eventCreate = proc("cuEventCreate", I_AI);
            eventRecord = proc("cuEventRecord", I_AA);
            eventSynchronize = proc("cuEventSynchronize", I_A);
            eventElapsed = proc("cuEventElapsedTime", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
            eventDestroy = proc("cuEventDestroy", I_A);
            moduleLoadData = proc("cuModuleLoadData", I_AA);
            moduleUnload = proc("cuModuleUnload", I_A);
            moduleGetFunction = proc("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
            funcGetAttribute = proc("cuFuncGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
            launch = proc("cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        }

        /** The entry point {@code name} in its {@link #API_VERSION} form. */
        private MethodHandle proc(String name, FunctionDescriptor fd) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment pfn = a.allocate(ADDRESS);
                int r = getProcV2
                        ? (int) getProc.invokeExact(a.allocateFrom(name), pfn, API_VERSION, 0L, a.allocate(JAVA_INT))
                        : (int) getProc.invokeExact(a.allocateFrom(name), pfn, API_VERSION, 0L);
                MemorySegment fn = pfn.get(ADDRESS, 0);
                if (r != 0 || fn.equals(MemorySegment.NULL)) {
                    throw new IllegalStateException("the driver has no " + name + " for CUDA " + API_VERSION / 1000
                            + " (cuGetProcAddress" + (getProcV2 ? "_v2" : "") + " status " + r + ")");
                }
                return LINKER.downcallHandle(fn, fd);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        int version() {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment v = a.allocate(JAVA_INT);
                int r = (int) driverGetVersion.invokeExact(v);
                return r == 0 ? v.get(JAVA_INT, 0) : 0;
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    private void check(int status, String call) {
        if (status != 0) throw new CudaException("driver", call, status, errorName(status), errorString(status));
    }

    @Override
    public void init() {
        try {
            check((int) driver().init.invokeExact(0), "cuInit");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int driverVersion() {
        return driver().version();
    }

    String errorName(int status) {
        return errorText(driver().errorName, status);
    }

    String errorString(int status) {
        return errorText(driver().errorString, status);
    }

    private static String errorText(MethodHandle mh, int status) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int r = (int) mh.invokeExact(status, p);
            return r == 0 ? cString(p.get(ADDRESS, 0)) : null;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private int outInt(MethodHandle mh, String call, Object... rest) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            Object[] args = new Object[rest.length + 1];
            args[0] = out;
            System.arraycopy(rest, 0, args, 1, rest.length);
            check((int) mh.invokeWithArguments(args), call);
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private MemorySegment outPtr(MethodHandle mh, String call, Object... rest) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            Object[] args = new Object[rest.length + 1];
            args[0] = out;
            System.arraycopy(rest, 0, args, 1, rest.length);
            check((int) mh.invokeWithArguments(args), call);
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private void call(MethodHandle mh, String call, Object... args) {
        try {
            check((int) mh.invokeWithArguments(args), call);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public int deviceCount() {
        return outInt(driver().deviceGetCount, "cuDeviceGetCount");
    }

    @Override
    public DeviceInfo device(int ordinal) {
        Driver d = driver();
        int dev = outInt(d.deviceGet, "cuDeviceGet(" + ordinal + ")", ordinal);
        int major = outInt(d.deviceGetAttribute, "cuDeviceGetAttribute", 75, dev);
        int minor = outInt(d.deviceGetAttribute, "cuDeviceGetAttribute", 76, dev);
        int sms = outInt(d.deviceGetAttribute, "cuDeviceGetAttribute", 16, dev);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(256);
            check((int) d.deviceGetName.invokeExact(name, 256, dev), "cuDeviceGetName");
            MemorySegment total = a.allocate(JAVA_LONG);
            check((int) d.deviceTotalMem.invokeExact(total, dev), "cuDeviceTotalMem");
            return new DeviceInfo(ordinal, name.getString(0, StandardCharsets.UTF_8), major, minor, total.get(JAVA_LONG, 0), sms);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public Context retainPrimaryContext(int ordinal) {
        Driver d = driver();
        int dev = outInt(d.deviceGet, "cuDeviceGet(" + ordinal + ")", ordinal);
        return new Handle(outPtr(d.primaryRetain, "cuDevicePrimaryCtxRetain", dev));
    }

    @Override
    public void releasePrimaryContext(int ordinal) {
        Driver d = driver();
        int dev = outInt(d.deviceGet, "cuDeviceGet(" + ordinal + ")", ordinal);
        call(d.primaryRelease, "cuDevicePrimaryCtxRelease", dev);
    }

    @Override
    public void setCurrent(Context context) {
        try {
            check((int) driver.ctxSetCurrent.invokeExact(ptr(context)), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long memAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            check((int) driver().memAlloc.invokeExact(out, bytes), "cuMemAlloc(" + bytes + " bytes)");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void memFree(long address) {
        try {
            check((int) driver().memFree.invokeExact(address), "cuMemFree");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public long[] memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(JAVA_LONG);
            MemorySegment total = a.allocate(JAVA_LONG);
            check((int) driver().memGetInfo.invokeExact(free, total), "cuMemGetInfo");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public MemorySegment hostAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) driver().memHostAlloc.invokeExact(out, bytes, 0), "cuMemHostAlloc(" + bytes + " bytes)");
            return out.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void hostFree(MemorySegment segment) {
        try {
            check((int) driver().memFreeHost.invokeExact(segment), "cuMemFreeHost");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void copyHtoD(long dst, MemorySegment src, long bytes, Stream stream) {
        try {
            check((int) driver.htod.invokeExact(dst, src, bytes, ptr(stream)), "cuMemcpyHtoDAsync");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void copyDtoH(MemorySegment dst, long src, long bytes, Stream stream) {
        try {
            check((int) driver.dtoh.invokeExact(dst, src, bytes, ptr(stream)), "cuMemcpyDtoHAsync");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void copyDtoD(long dst, long src, long bytes, Stream stream) {
        try {
            check((int) driver.dtod.invokeExact(dst, src, bytes, ptr(stream)), "cuMemcpyDtoDAsync");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void memsetD32(long dst, int bits, long count, Stream stream) {
        try {
            check((int) driver.memsetD32.invokeExact(dst, bits, count, ptr(stream)), "cuMemsetD32Async");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public Stream streamCreate() {
        // CU_STREAM_NON_BLOCKING: no implicit synchronisation with the legacy default stream other code may use.
        return new Handle(outPtr(driver().streamCreate, "cuStreamCreate", 1));
    }

    @Override
    public void streamSynchronize(Stream stream) {
        try {
            check((int) driver.streamSynchronize.invokeExact(ptr(stream)), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void streamDestroy(Stream stream) {
        call(driver().streamDestroy, "cuStreamDestroy", ptr(stream));
    }

    @Override
    public Event eventCreate(boolean timing) {
        return new Handle(outPtr(driver().eventCreate, "cuEventCreate", timing ? 0 : 2 /* CU_EVENT_DISABLE_TIMING */));
    }

    @Override
    public void eventRecord(Event event, Stream stream) {
        try {
            check((int) driver.eventRecord.invokeExact(ptr(event), ptr(stream)), "cuEventRecord");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void eventSynchronize(Event event) {
        try {
            check((int) driver.eventSynchronize.invokeExact(ptr(event)), "cuEventSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public float eventElapsed(Event start, Event end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(JAVA_FLOAT);
            check((int) driver().eventElapsed.invokeExact(ms, ptr(start), ptr(end)), "cuEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void eventDestroy(Event event) {
        call(driver().eventDestroy, "cuEventDestroy", ptr(event));
    }

    @Override
    public Module moduleLoad(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, img, ValueLayout.JAVA_BYTE, 0, image.length);
            return new Handle(outPtr(driver().moduleLoadData, "cuModuleLoadData", img));
        }
    }

    @Override
    public void moduleUnload(Module module) {
        call(driver().moduleUnload, "cuModuleUnload", ptr(module));
    }

    @Override
    public Function function(Module module, String name) {
        try (Arena a = Arena.ofConfined()) {
            return new Handle(outPtr(driver().moduleGetFunction, "cuModuleGetFunction(" + name + ")", ptr(module), a.allocateFrom(name)));
        }
    }

    @Override
    public int maxThreadsPerBlock(Function function) {
        return outInt(driver().funcGetAttribute, "cuFuncGetAttribute", 0 /* MAX_THREADS_PER_BLOCK */, ptr(function));
    }

    @Override
    public void launch(Function function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                       Stream stream, Object[] args) {
        try (Arena a = Arena.ofConfined()) {
            // cuLaunchKernel copies the argument values before it returns, so they may live in this call's arena.
            MemorySegment values = a.allocate(MemoryLayout.sequenceLayout(Math.max(1, args.length), JAVA_LONG));
            MemorySegment params = a.allocate(MemoryLayout.sequenceLayout(Math.max(1, args.length), ADDRESS));
            for (int i = 0; i < args.length; i++) {
                long off = 8L * i;
                switch (args[i]) {
                    case Long v -> values.set(JAVA_LONG, off, v);
                    case Integer v -> values.set(JAVA_INT, off, v);
                    case Float v -> values.set(JAVA_FLOAT, off, v);
                    default -> throw new IllegalArgumentException("argument " + i + ": expected a Long, Integer or Float, got " + args[i]);
                }
                params.setAtIndex(ADDRESS, i, values.asSlice(off));
            }
            check((int) driver.launch.invokeExact(ptr(function), gridX, gridY, gridZ, blockX, blockY, blockZ, 0,
                    ptr(stream), params, MemorySegment.NULL), "cuLaunchKernel");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ================= NVRTC =================

    private static final class Nvrtc {
        final MethodHandle version, numArchs, archs, create, compile, ptxSize, ptx, cubinSize, cubin, logSize, log, destroy, errorString;

        Nvrtc(SymbolLookup lib) {
            version = bind(lib, "nvrtcVersion", I_AA);
            numArchs = bind(lib, "nvrtcGetNumSupportedArchs", I_A);
            archs = bind(lib, "nvrtcGetSupportedArchs", I_A);
            create = bind(lib, "nvrtcCreateProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
            compile = bind(lib, "nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
            ptxSize = bind(lib, "nvrtcGetPTXSize", I_AA);
            ptx = bind(lib, "nvrtcGetPTX", I_AA);
            cubinSize = bind(lib, "nvrtcGetCUBINSize", I_AA);
            cubin = bind(lib, "nvrtcGetCUBIN", I_AA);
            logSize = bind(lib, "nvrtcGetProgramLogSize", I_AA);
            log = bind(lib, "nvrtcGetProgramLog", I_AA);
            destroy = bind(lib, "nvrtcDestroyProgram", I_A);
            errorString = bind(lib, "nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        }

        int[] version() {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment major = a.allocate(JAVA_INT);
                MemorySegment minor = a.allocate(JAVA_INT);
                int r = (int) version.invokeExact(major, minor);
                if (r != 0) throw new CudaException("NVRTC", "nvrtcVersion", r, name(r), null);
                return new int[] {major.get(JAVA_INT, 0), minor.get(JAVA_INT, 0)};
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        String name(int status) {
            try {
                return cString((MemorySegment) errorString.invokeExact(status));
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    @Override
    public int[] nvrtcVersion() {
        return nvrtc().version();
    }

    @Override
    public int[] nvrtcArchs() {
        Nvrtc n = nvrtc();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(JAVA_INT);
            if ((int) n.numArchs.invokeExact(count) != 0 || count.get(JAVA_INT, 0) <= 0) return new int[0];
            MemorySegment archs = a.allocate(JAVA_INT, count.get(JAVA_INT, 0));
            if ((int) n.archs.invokeExact(archs) != 0) return new int[0];
            int[] out = archs.toArray(JAVA_INT);
            java.util.Arrays.sort(out);
            return out;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public NvrtcOutput nvrtcCompile(String name, String source, Map<String, String> headers, List<String> options, boolean wantCubin) {
        Nvrtc n = nvrtc();
        try (Arena a = Arena.ofConfined()) {
            int h = headers.size();
            MemorySegment texts = a.allocate(ADDRESS, Math.max(1, h));
            MemorySegment names = a.allocate(ADDRESS, Math.max(1, h));
            int i = 0;
            for (Map.Entry<String, String> e : headers.entrySet()) {
                names.setAtIndex(ADDRESS, i, a.allocateFrom(e.getKey()));
                texts.setAtIndex(ADDRESS, i, a.allocateFrom(e.getValue()));
                i++;
            }
            MemorySegment prog = a.allocate(ADDRESS);
            // Locals, not conditionals in the call: invokeExact takes the static type of each argument expression.
            MemorySegment headerTexts = h == 0 ? MemorySegment.NULL : texts;
            MemorySegment headerNames = h == 0 ? MemorySegment.NULL : names;
            int r = (int) n.create.invokeExact(prog, a.allocateFrom(source), a.allocateFrom(name), h, headerTexts, headerNames);
            if (r != 0) throw new CudaException("NVRTC", "nvrtcCreateProgram(" + name + ")", r, n.name(r), null);
            MemorySegment program = prog.get(ADDRESS, 0);
            try {
                MemorySegment opts = a.allocate(ADDRESS, Math.max(1, options.size()));
                for (int k = 0; k < options.size(); k++) opts.setAtIndex(ADDRESS, k, a.allocateFrom(options.get(k)));
                int status = (int) n.compile.invokeExact(program, options.size(), opts);
                String log = bytes(a, n.logSize, n.log, program, "nvrtcGetProgramLog", n);
                String logText = stripNul(log);
                if (status != 0) return new NvrtcOutput(status, n.name(status), logText, null, null);
                String ptx = stripNul(bytes(a, n.ptxSize, n.ptx, program, "nvrtcGetPTX", n));
                byte[] cubin = null;
                if (wantCubin) {
                    MemorySegment size = a.allocate(JAVA_LONG);
                    int s = (int) n.cubinSize.invokeExact(program, size);
                    if (s != 0) throw new CudaException("NVRTC", "nvrtcGetCUBINSize(" + name + ")", s, n.name(s), null);
                    MemorySegment buf = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
                    s = (int) n.cubin.invokeExact(program, buf);
                    if (s != 0) throw new CudaException("NVRTC", "nvrtcGetCUBIN(" + name + ")", s, n.name(s), null);
                    cubin = buf.asSlice(0, size.get(JAVA_LONG, 0)).toArray(ValueLayout.JAVA_BYTE);
                }
                return new NvrtcOutput(0, "NVRTC_SUCCESS", logText, ptx, cubin);
            } finally {
                MemorySegment p = a.allocate(ADDRESS);
                p.set(ADDRESS, 0, program);
                int ignored = (int) n.destroy.invokeExact(p);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A NUL-terminated text NVRTC hands out through a size query and a fill call. */
    private static String bytes(Arena a, MethodHandle sizeFn, MethodHandle fillFn, MemorySegment program, String call, Nvrtc n) throws Throwable {
        MemorySegment size = a.allocate(JAVA_LONG);
        int s = (int) sizeFn.invokeExact(program, size);
        if (s != 0) throw new CudaException("NVRTC", call + "Size", s, n.name(s), null);
        MemorySegment buf = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        s = (int) fillFn.invokeExact(program, buf);
        if (s != 0) throw new CudaException("NVRTC", call, s, n.name(s), null);
        return new String(buf.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    }

    private static String stripNul(String s) {
        int nul = s.indexOf('\0');
        return nul < 0 ? s : s.substring(0, nul);
    }

    // ================= cuBLAS =================

    private static final class Cublas {
        final MethodHandle getProperty, create, destroy, setStream, setMathMode, sgemm, sgemmBatched;

        Cublas(SymbolLookup lib) {
            getProperty = bind(lib, "cublasGetProperty", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
            create = bind(lib, "cublasCreate_v2", I_A);
            destroy = bind(lib, "cublasDestroy_v2", I_A);
            setStream = bind(lib, "cublasSetStream_v2", I_AA);
            setMathMode = bind(lib, "cublasSetMathMode", I_AI);
            sgemm = bind(lib, "cublasSgemm_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                    JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
            sgemmBatched = bind(lib, "cublasSgemmStridedBatched", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                    JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG,
                    ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
        }

        int property(int type) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment v = a.allocate(JAVA_INT);
                int r = (int) getProperty.invokeExact(type, v);
                if (r != 0) throw new CudaException("cuBLAS", "cublasGetProperty", r, status(r), null);
                return v.get(JAVA_INT, 0);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        String versionString() {
            return property(0) + "." + property(1) + "." + property(2);
        }
    }

    static String status(int s) {
        return s >= 0 && s < CUBLAS_STATUS.length && CUBLAS_STATUS[s] != null ? CUBLAS_STATUS[s] : "cublasStatus " + s;
    }

    private static void checkBlas(int s, String call) {
        if (s != 0) throw new CudaException("cuBLAS", call, s, status(s), null);
    }

    @Override
    public Blas blasCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDRESS);
            checkBlas((int) cublas().create.invokeExact(h), "cublasCreate");
            return new Handle(h.get(ADDRESS, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void blasDestroy(Blas blas) {
        try {
            checkBlas((int) cublas().destroy.invokeExact(ptr(blas)), "cublasDestroy");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void blasSetStream(Blas blas, Stream stream) {
        try {
            checkBlas((int) cublas().setStream.invokeExact(ptr(blas), ptr(stream)), "cublasSetStream");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void blasDefaultMath(Blas blas) {
        try {
            checkBlas((int) cublas().setMathMode.invokeExact(ptr(blas), 0 /* CUBLAS_DEFAULT_MATH */), "cublasSetMathMode");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override
    public void sgemm(Blas blas, CublasGemm g, float alpha, long first, long second, float beta, long c) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment pa = a.allocateFrom(JAVA_FLOAT, alpha);
            MemorySegment pb = a.allocateFrom(JAVA_FLOAT, beta);
            int opFirst = g.transFirst() ? 1 : 0;
            int opSecond = g.transSecond() ? 1 : 0;
            int s;
            if (g.batch() == 1) {
                s = (int) cublas.sgemm.invokeExact(ptr(blas), opFirst, opSecond, g.m(), g.n(), g.k(), pa, first, g.ldFirst(),
                        second, g.ldSecond(), pb, c, g.ldc());
                checkBlas(s, "cublasSgemm");
            } else {
                s = (int) cublas.sgemmBatched.invokeExact(ptr(blas), opFirst, opSecond, g.m(), g.n(), g.k(), pa, first,
                        g.ldFirst(), g.strideFirst(), second, g.ldSecond(), g.strideSecond(), pb, c, g.ldc(), g.strideC(), g.batch());
                checkBlas(s, "cublasSgemmStridedBatched");
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
