package dev.recur.backend.cuda;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.BackendUnavailableException;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The CUDA backend for one device: device memory through the driver API, GEMM through cuBLAS, and the kernels of
 * {@code kernels/cuda/*.cu} compiled with NVRTC for the device's own architecture at first use (cached on disk, see
 * {@link KernelCache}). It holds no scheduling logic: the shared schedule drives it through {@link DeviceBackend}
 * exactly as it drives OpenCL. The libraries come through {@link CudaApi}, whichever binding is chosen.
 *
 * <p>Everything, cuBLAS included, is issued to one non-blocking stream of this backend, so operations run in issue
 * order and never wait on other code's work on the legacy default stream. Uploads go through two page-locked staging
 * halves (the copy is asynchronous; small uploads share a half, and a half is reused once the event recorded after
 * the last copy from it has passed);
 * downloads wait for the stream. The device's primary context is retained for the backend's life and made current
 * on the calling thread before each call sequence, so a backend may move between threads.
 *
 * <p>A kernel fault (a sticky status such as {@code CUDA_ERROR_ILLEGAL_ADDRESS}) closes the backend with that
 * reason, naming the launches issued since the last completed synchronisation (with
 * {@code -Drecur.cuda.syncLaunches=true} every launch is synchronised, so the faulting one is named exactly); later
 * calls fail with the same reason. The single-work-group kernels ({@link Kernels#SINGLE_GROUP}) run as one block.
 */
public final class CudaBackend implements DeviceBackend {
    private static final String NAME = "cuda";
    /** Threads per block; kernels bounds-check every index, so grids are rounded up to whole blocks. */
    private static final int BLOCK_THREADS = 256;
    private static final long MAX_GRID_X = Integer.MAX_VALUE;
    private static final long MAX_GRID_YZ = 65535;
    /** Bytes of each of the two page-locked staging halves. */
    static final int STAGING_BYTES = 2 << 20;
    /** How many launch names a fault report lists at most. */
    private static final int RECENT_LAUNCHES = 16;
    private static final Pattern DEVICE_NAME = Pattern.compile("cuda(?::(\\d+))?");

    /** Probes for the driver, cuBLAS, NVRTC and a device; reports the missing library by name. Opens device 0. */
    public static final BackendProvider PROVIDER = provider(NAME);

    /**
     * The provider for {@code cuda} (device 0) or {@code cuda:N} (device N), as {@link dev.recur.backend.Backends}
     * accepts them.
     */
    public static BackendProvider provider(String name) {
        Matcher m = DEVICE_NAME.matcher(name == null ? "" : name);
        if (!m.matches()) throw new IllegalArgumentException("backend: expected cuda or cuda:N, got '" + name + "'");
        int ordinal;
        try {
            ordinal = m.group(1) == null ? 0 : Integer.parseInt(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("backend " + name + ": the device number is too large");
        }
        return new BackendProvider() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Availability probe() {
                CudaProbe.Result r = CudaProbe.result();
                if (r.available() && ordinal >= r.devices().size()) {
                    return Availability.no("no device cuda:" + ordinal + ": the driver lists " + r.devices().size()
                            + " (cuda:0.." + (r.devices().size() - 1) + ")");
                }
                return r.availability();
            }

            @Override
            public Backend open() {
                Availability a = probe();
                if (!a.available()) throw new BackendUnavailableException("backend " + name + " is unavailable: " + a.detail());
                return new CudaBackend(name, CudaProbe.result(), ordinal, KernelCache.standard());
            }
        };
    }

    /**
     * A loaded kernel, the parameter kinds its PTX declares, and the most threads a block of it may have
     * (fewer than 1024 when its registers would not fit: a 128-register kernel allows 512).
     */
    private record Kernel(String name, CudaApi.Function function, List<PtxEntries.Kind> params, int maxThreads) {}

    /** One page-locked staging half and the event recorded after the last copy that used it. */
    private record Staging(MemorySegment memory, CudaApi.Event done, boolean pinned) {}

    private final String name;
    private final CudaApi api;
    private final CudaApi.DeviceInfo device;
    private final CudaApi.Context context;
    private final CudaApi.Stream stream;
    private final CudaApi.Blas blas;
    private final Staging[] staging = new Staging[2];
    /** The staging half uploads are filling, and how many of its bytes are handed out. */
    private int current;
    private int stagingUsed;
    private final java.lang.foreign.Arena stagingArena;
    private final NvrtcCompiler compiler;
    private final NvrtcCompiler.Target target;
    private final Map<String, CudaKernelSources.Unit> unitsByKernel;
    private final Map<String, CudaApi.Module> modules = new HashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();
    // Concurrent: a forgotten buffer is released from the cleaner thread (see CudaBuffer).
    private final Set<CudaBuffer.Mem> live = ConcurrentHashMap.newKeySet();
    private final AtomicLong memoryInUse = new AtomicLong();
    private final dev.recur.backend.Traffic.Counter traffic = new dev.recur.backend.Traffic.Counter();
    private final ArrayDeque<String> recentLaunches = new ArrayDeque<>();
    private final boolean syncLaunches = Boolean.getBoolean("recur.cuda.syncLaunches");
    private volatile boolean closed;
    /** Why the backend closed itself (a kernel fault), or null. */
    private volatile String fault;

    /** A backend on device {@code ordinal} of the probe's binding, its compiled kernels kept in {@code cache}. */
    CudaBackend(String name, CudaProbe.Result probe, int ordinal, KernelCache cache) {
        this.name = name;
        this.api = probe.api();
        this.device = probe.devices().get(ordinal);
        this.context = api.retainPrimaryContext(ordinal);
        List<Runnable> undo = new ArrayList<>();
        undo.add(() -> api.releasePrimaryContext(ordinal));
        boolean ok = false;
        try {
            api.setCurrent(context);
            this.stream = api.streamCreate();
            undo.add(() -> api.streamDestroy(stream));
            this.blas = api.blasCreate();
            undo.add(() -> api.blasDestroy(blas));
            api.blasSetStream(blas, stream);
            api.blasDefaultMath(blas);
            java.lang.foreign.Arena arena = null;
            for (int i = 0; i < staging.length; i++) {
                MemorySegment mem;
                boolean pinned = true;
                try {
                    mem = api.hostAlloc(STAGING_BYTES);
                } catch (CudaException e) {
                    // Page-locked memory can be capped (ulimit -l, containers): pageable memory only costs speed.
                    if (arena == null) arena = java.lang.foreign.Arena.ofShared();
                    mem = arena.allocate(STAGING_BYTES, 64);
                    pinned = false;
                }
                staging[i] = new Staging(mem, api.eventCreate(false), pinned);
                Staging st = staging[i];
                undo.add(() -> {
                    api.eventDestroy(st.done());
                    if (st.pinned()) api.hostFree(st.memory());
                });
            }
            this.stagingArena = arena;
            if (arena != null) undo.add(arena::close);
            for (Staging st : staging) api.eventRecord(st.done(), stream);
            this.compiler = new NvrtcCompiler(api, cache);
            this.target = compiler.target(device.major() * 10 + device.minor());
            this.unitsByKernel = CudaKernelSources.byKernel(CudaKernelSources.load());
            ok = true;
        } finally {
            if (!ok) {
                for (Runnable r : undo.reversed()) {
                    try {
                        r.run();
                    } catch (RuntimeException e) {
                        // Undoing a half-made backend: the first failure is the one the caller sees.
                    }
                }
            }
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String deviceName() {
        return device.name() + " (cuda:" + device.ordinal() + ", sm_" + device.major() + device.minor() + ", kernels "
                + (target.cubin() ? "compiled for " + target.label() : "as compute_" + target.arch() + " PTX for the driver's JIT")
                + ", " + api.binding() + " binding)";
    }

    /** Which binding this backend runs on: {@code panama} or {@code jcuda}. */
    public String binding() {
        return api.binding();
    }

    // ---- memory ----

    @Override
    public DeviceBuffer allocate(DeviceBuffer.Type type, long elements) {
        open();
        if (type == null) throw new IllegalArgumentException("cuda allocate: type must not be null");
        if (elements < 1) throw new IllegalArgumentException("cuda allocate: elements: expected >= 1, got " + elements);
        long bytes = Math.multiplyExact(elements, (long) type.bytes());
        long address;
        try {
            address = api.memAlloc(bytes);
        } catch (CudaException e) {
            if (e.code() == CudaException.OUT_OF_MEMORY) {
                long[] info = guard("cuMemGetInfo", api::memInfo);
                throw new OutOfDeviceMemoryException(NAME, bytes, info[0], e.statusName() + "; " + info[1] + " bytes on "
                        + device.name() + ", " + memoryInUse.get() + " held by this backend");
            }
            throw failure(e);
        }
        CudaBuffer b = new CudaBuffer(this, type, elements, address, false);
        live.add(b.state());
        memoryInUse.addAndGet(bytes);
        return b;
    }

    /** Frees a buffer's memory; from {@link CudaBuffer.Mem#release}, on any thread. */
    /**
     * A buffer over device memory the caller already has, without a copy: {@code devicePointer} from
     * {@code cuMemAlloc} in its device's primary context (the context this backend retains and works in), or a
     * PyTorch tensor's {@code data_ptr()} on the same device (PyTorch uses the primary context too). Lifetime:
     * recur never frees it; the caller keeps the memory until the buffer is closed and the work this backend issued
     * on it has finished ({@link #finish()}). It does not count in {@link #memoryInUse()}.
     */
    public DeviceBuffer wrap(long devicePointer, long elements, DeviceBuffer.Type type) {
        open();
        if (devicePointer == 0 || devicePointer % 4 != 0) {
            throw new IllegalArgumentException("devicePointer: expected a non-null address aligned to 4 bytes, got 0x"
                    + Long.toHexString(devicePointer));
        }
        if (type == null) throw new IllegalArgumentException("type: must not be null");
        if (elements < 1) throw new IllegalArgumentException("elements: expected >= 1, got " + elements);
        return new CudaBuffer(this, type, elements, devicePointer, true);
    }

    @Override
    public dev.recur.backend.Traffic traffic() {
        return traffic.read();
    }

    void free(CudaBuffer.Mem b, long address) {
        if (!live.remove(b)) return;
        memoryInUse.addAndGet(-b.bytes);
        // After a fault the context is gone with everything in it; the memory returns when it is released.
        if (closed) return;
        synchronized (this) {
            api.setCurrent(context);
            guard("cuMemFree", () -> {
                api.memFree(address);
                return null;
            });
        }
    }

    @Override
    public long memoryInUse() {
        return memoryInUse.get();
    }

    /** Free and total bytes on the device, from {@code cuMemGetInfo}. */
    public long[] deviceMemoryInfo() {
        open();
        return guard("cuMemGetInfo", api::memInfo);
    }

    @Override
    public void upload(float[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        open();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        stagedUpload(buffer("dst", dst, DeviceBuffer.Type.F32), dstOff, count,
                (slice, done, n) -> MemorySegment.copy(src, srcOff + done, slice, ValueLayout.JAVA_FLOAT, 0, n));
    }

    @Override
    public void upload(int[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        open();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        stagedUpload(buffer("dst", dst, DeviceBuffer.Type.I32), dstOff, count,
                (slice, done, n) -> MemorySegment.copy(src, srcOff + done, slice, ValueLayout.JAVA_INT, 0, n));
    }

    /** Rounds float64 to float32 straight into the staging memory (no float[] in between). */
    @Override
    public void uploadDoubles(double[] src, int srcOff, DeviceBuffer dst, long dstOff, int count) {
        open();
        DeviceBackend.checkHostRange("src", src, src == null ? 0 : src.length, srcOff, count);
        stagedUpload(buffer("dst", dst, DeviceBuffer.Type.F32), dstOff, count, (slice, done, n) -> {
            for (int i = 0; i < n; i++) slice.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) src[srcOff + done + i]);
        });
    }

    /** Widens float32 to float64 straight from the staging memory. */
    @Override
    public void downloadDoubles(DeviceBuffer src, long srcOff, double[] dst, int dstOff, int count) {
        open();
        CudaBuffer s = buffer("src", src, DeviceBuffer.Type.F32);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        stagedDownload(s, srcOff, count, (buf, done, n) -> {
            for (int i = 0; i < n; i++) dst[dstOff + done + i] = buf.getAtIndex(ValueLayout.JAVA_FLOAT, i);
        });
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, float[] dst, int dstOff, int count) {
        open();
        CudaBuffer s = buffer("src", src, DeviceBuffer.Type.F32);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        stagedDownload(s, srcOff, count, (buf, done, n) -> MemorySegment.copy(buf, ValueLayout.JAVA_FLOAT, 0, dst, dstOff + done, n));
    }

    @Override
    public void download(DeviceBuffer src, long srcOff, int[] dst, int dstOff, int count) {
        open();
        CudaBuffer s = buffer("src", src, DeviceBuffer.Type.I32);
        DeviceBackend.checkHostRange("dst", dst, dst == null ? 0 : dst.length, dstOff, count);
        stagedDownload(s, srcOff, count, (buf, done, n) -> MemorySegment.copy(buf, ValueLayout.JAVA_INT, 0, dst, dstOff + done, n));
    }

    /** Moves {@code n} elements between the host and a staging slice, the {@code done} before them already moved. */
    @FunctionalInterface
    private interface Chunk {
        void copy(MemorySegment staging, int done, int n);
    }

    /** An upload of {@code count} 4-byte elements into {@code d[dstOff..]}, one staging slice at a time. */
    private void stagedUpload(CudaBuffer d, long dstOff, int count, Chunk fill) {
        checkRange("dst", d, dstOff, count);
        int chunk = STAGING_BYTES / 4;
        for (int done = 0; done < count; done += chunk) {
            int n = Math.min(chunk, count - done);
            MemorySegment slice = stage(4L * n);
            fill.copy(slice, done, n);
            copyUp(d.at(dstOff + done), slice);
        }
    }

    /** A download of {@code count} 4-byte elements from {@code s[srcOff..]}, handed over one staging slice at a time. */
    private void stagedDownload(CudaBuffer s, long srcOff, int count, Chunk drain) {
        checkRange("src", s, srcOff, count);
        int chunk = STAGING_BYTES / 4;
        for (int done = 0; done < count; done += chunk) {
            int n = Math.min(chunk, count - done);
            drain.copy(copyDown(s.at(srcOff + done), 4L * n), done, n);
        }
    }

    /**
     * A fresh slice of {@code bytes} (at most {@link #STAGING_BYTES}) for an upload: the rest of the half being filled,
     * else the other half, once the copies that last read it have finished. Small uploads share a half, so the host
     * waits for the device only when a whole half has been used since (not at every upload).
     */
    private MemorySegment stage(long bytes) {
        if (stagingUsed + bytes > STAGING_BYTES) {
            current = (current + 1) % staging.length;
            Staging next = staging[current];
            guard("cuEventSynchronize", () -> {
                api.eventSynchronize(next.done());
                return null;
            });
            traffic.waited();
            stagingUsed = 0;
        }
        MemorySegment slice = staging[current].memory().asSlice(stagingUsed, bytes);
        stagingUsed += (int) ((bytes + 63) & ~63L);
        return slice;
    }

    /** Issues the copy of a staged slice and marks its half as read by everything issued so far. */
    private void copyUp(long to, MemorySegment slice) {
        Staging st = staging[current];
        guard("cuMemcpyHtoDAsync", () -> {
            api.copyHtoD(to, slice, slice.byteSize(), stream);
            api.eventRecord(st.done(), stream);
            return null;
        });
        traffic.toDevice(slice.byteSize());
    }

    /**
     * Copies {@code bytes} from the device into the half being filled and waits for the stream. Uploads still reading
     * that half were issued earlier on the same stream, so they finish before this copy writes it; once the stream is
     * idle, every half is free again.
     */
    private MemorySegment copyDown(long from, long bytes) {
        MemorySegment buf = staging[current].memory().asSlice(0, bytes);
        guard("cuMemcpyDtoHAsync", () -> {
            api.copyDtoH(buf, from, bytes, stream);
            api.streamSynchronize(stream);
            return null;
        });
        traffic.toHost(bytes, true);
        syncedRecently();
        stagingUsed = 0;
        return buf;
    }

    @Override
    public void fill(DeviceBuffer dst, long off, long count, double value) {
        open();
        CudaBuffer d = buffer("dst", dst, null);
        checkRange("dst", d, off, count);
        if (count == 0) return;
        int bits = d.type() == DeviceBuffer.Type.F32 ? Float.floatToRawIntBits((float) value) : (int) value;
        long at = d.at(off);
        guard("cuMemsetD32Async", () -> {
            api.memsetD32(at, bits, count, stream);
            return null;
        });
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
        long from = s.at(srcOff);
        long to = d.at(dstOff);
        guard("cuMemcpyDtoDAsync", () -> {
            api.copyDtoD(to, from, 4L * count, stream);
            return null;
        });
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
        CublasGemm g = CublasGemm.of(transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch);
        long first = bb.at(offB);
        long second = ba.at(offA);
        long out = bc.at(offC);
        guard(batch == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched", () -> {
            api.sgemm(blas, g, alpha, first, second, beta, out);
            return null;
        });
        noteLaunch(batch == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched");
    }

    // ---- kernels ----

    /**
     * The single-work-group kernels run here as one block of the whole grid (a block synchronises with
     * __syncthreads). Not the 8-units-per-work-item step kernels: they exist because PoCL does not vectorise across
     * work items, while a GPU is better served by one unit per thread, so kernels/cuda has no twin of them.
     */
    @Override
    public boolean supports(String kernel) {
        return supportsKernel(kernel);
    }

    static boolean supportsKernel(String kernel) {
        return Kernels.SINGLE_GROUP.contains(kernel);
    }

    @Override
    public void launch(String kernelName, long[] globalSize, Object... args) {
        open();
        if (kernelName == null) throw new IllegalArgumentException("cuda launch: kernel name must not be null");
        if (globalSize == null || globalSize.length < 1 || globalSize.length > 3) {
            throw new IllegalArgumentException("cuda launch " + kernelName + ": globalSize: expected 1 to 3 extents, got "
                    + (globalSize == null ? "null" : globalSize.length));
        }
        for (int i = 0; i < globalSize.length; i++) {
            if (globalSize[i] < 1) {
                throw new IllegalArgumentException("cuda launch " + kernelName + ": globalSize[" + i + "]: expected >= 1, got " + globalSize[i]);
            }
        }
        Kernel kernel = kernel(kernelName);
        Object[] argv = args == null ? new Object[0] : args;
        if (argv.length != kernel.params().size()) {
            throw new IllegalArgumentException("cuda launch " + kernelName + ": expected " + kernel.params().size()
                    + " arguments, got " + argv.length);
        }
        Object[] values = new Object[argv.length];
        for (int i = 0; i < argv.length; i++) values[i] = argument(kernelName, i, kernel.params().get(i), argv[i]);

        int[] block;
        long nx, ny, nz;
        if (Kernels.SINGLE_GROUP.contains(kernelName)) {
            // One block of exactly the grid: the kernel synchronises its threads and loops over the work itself.
            if (globalSize.length != 1 || globalSize[0] > kernel.maxThreads()) {
                throw new IllegalArgumentException("cuda launch " + kernelName + ": a single work-group kernel needs a 1-D grid of at most "
                        + kernel.maxThreads() + " work items (its threads per block on this device), got " + Arrays.toString(globalSize));
            }
            block = new int[] {(int) globalSize[0], 1, 1};
            nx = ny = nz = 1;
        } else {
            long gx = globalSize[0];
            long gy = globalSize.length > 1 ? globalSize[1] : 1;
            long gz = globalSize.length > 2 ? globalSize[2] : 1;
            block = blockShape(gx, gy, gz, kernel.maxThreads());
            nx = ceilDiv(gx, block[0]);
            ny = ceilDiv(gy, block[1]);
            nz = ceilDiv(gz, block[2]);
            if (nx > MAX_GRID_X || ny > MAX_GRID_YZ || nz > MAX_GRID_YZ) {
                throw new IllegalArgumentException("cuda launch " + kernelName + ": globalSize " + Arrays.toString(globalSize)
                        + " needs a grid of " + nx + " x " + ny + " x " + nz + " blocks of " + block[0] + " x " + block[1]
                        + " x " + block[2] + "; CUDA allows at most " + MAX_GRID_X + " x " + MAX_GRID_YZ + " x " + MAX_GRID_YZ);
            }
        }
        int gridX = (int) nx, gridY = (int) ny, gridZ = (int) nz;
        noteLaunch(kernelName);
        guard("cuLaunchKernel(" + kernelName + ")", () -> {
            api.launch(kernel.function(), gridX, gridY, gridZ, block[0], block[1], block[2], stream, values);
            return null;
        });
        if (syncLaunches) {
            guard("cuStreamSynchronize after " + kernelName, () -> {
                api.streamSynchronize(stream);
                return null;
            });
            traffic.waited();
            syncedRecently();
        }
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

    private Object argument(String kernel, int i, PtxEntries.Kind kind, Object arg) {
        switch (kind) {
            case POINTER -> {
                if (!(arg instanceof DeviceBuffer)) throw wrongArgument(kernel, i, "a DeviceBuffer", arg);
                return buffer("argument " + i + " of " + kernel, (DeviceBuffer) arg, null).at(0);
            }
            case INT -> {
                if (!(arg instanceof Integer v)) throw wrongArgument(kernel, i, "an Integer", arg);
                return v;
            }
            case FLOAT -> {
                if (!(arg instanceof Float v)) throw wrongArgument(kernel, i, "a Float", arg);
                return v;
            }
            default -> throw new IllegalStateException("unknown parameter kind " + kind);
        }
    }

    private static IllegalArgumentException wrongArgument(String kernel, int i, String expected, Object got) {
        return new IllegalArgumentException("cuda launch " + kernel + ": argument " + i + ": expected " + expected + ", got "
                + (got == null ? "null" : got.getClass().getSimpleName() + " " + got));
    }

    /** The named kernel, compiling and loading its unit at first use. */
    private Kernel kernel(String kernelName) {
        Kernel k = kernels.get(kernelName);
        if (k != null) return k;
        CudaKernelSources.Unit unit = unitsByKernel.get(kernelName);
        if (unit == null) {
            throw new IllegalArgumentException("cuda launch: unknown kernel '" + kernelName + "'; kernels/cuda defines "
                    + unitsByKernel.keySet());
        }
        NvrtcCompiler.Compiled compiled = compiler.compile(unit, target);
        String ptx = compiled.ptx();
        CudaApi.Module module = modules.get(unit.name());
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
            CudaApi.Module mod = module;
            CudaApi.Function fn = guard("cuModuleGetFunction(" + kname + ")", () -> api.function(mod, kname));
            int maxThreads = guard("cuFuncGetAttribute(" + kname + ")", () -> api.maxThreadsPerBlock(fn));
            kernels.put(kname, new Kernel(kname, fn, params, maxThreads));
        }
        return kernels.get(kernelName);
    }

    /** Loads the CUBIN, or the PTX when there is none or the driver refuses the CUBIN. */
    private CudaApi.Module load(CudaKernelSources.Unit unit, NvrtcCompiler.Compiled compiled) {
        String cubinError = null;
        if (compiled.cubin() != null) {
            try {
                return api.moduleLoad(compiled.cubin());
            } catch (CudaException e) {
                if (e.sticky()) throw failure(e);
                cubinError = "the CUBIN failed with " + e.statusName();
            }
        }
        try {
            return api.moduleLoad((compiled.ptx() + '\0').getBytes(StandardCharsets.UTF_8));
        } catch (CudaException e) {
            if (e.sticky()) throw failure(e);
            String hint = e.statusName().equals("CUDA_ERROR_UNSUPPORTED_PTX_VERSION")
                    ? ": the PTX from " + compiler.version() + " is newer than this driver (CUDA "
                    + CudaProbe.version(api.driverVersion()) + ") accepts; update the driver or use an NVRTC no newer than it"
                    : "";
            throw new CudaKernelCompileException("cuModuleLoadData(kernels/cuda/" + unit.name() + ", " + target.label() + ") failed: "
                    + (cubinError == null ? "" : cubinError + ", then ") + "the PTX failed with " + e.statusName() + hint, "");
        }
    }

    @Override
    public void finish() {
        open();
        guard("cuStreamSynchronize", () -> {
            api.streamSynchronize(stream);
            return null;
        });
        traffic.waited();
        syncedRecently();
    }

    /**
     * Runs {@code work} (which issues to this backend) between two CUDA events and returns the device time between
     * them in milliseconds, after waiting for both: what the device spent, without the host's share of a
     * synchronisation round trip.
     */
    public double deviceMillis(Runnable work) {
        open();
        CudaApi.Event start = guard("cuEventCreate", () -> api.eventCreate(true));
        CudaApi.Event end = null;
        try {
            end = guard("cuEventCreate", () -> api.eventCreate(true));
            CudaApi.Event s = start, e = end;
            guard("cuEventRecord", () -> {
                api.eventRecord(s, stream);
                return null;
            });
            work.run();
            open();
            guard("cuEventRecord", () -> {
                api.eventRecord(e, stream);
                api.eventSynchronize(e);
                return null;
            });
            traffic.waited();
            syncedRecently();
            return guard("cuEventElapsedTime", () -> api.eventElapsed(s, e));
        } finally {
            if (!closed) {
                api.eventDestroy(start);
                if (end != null) api.eventDestroy(end);
            }
        }
    }

    @Override
    public void close() {
        synchronized (this) {
            if (released) return;
            released = true;
        }
        boolean faulted = fault != null;
        closed = true;
        List<String> errors = new ArrayList<>();
        try {
            api.setCurrent(context);
        } catch (RuntimeException e) {
            errors.add(e.getMessage());
        }
        // Work still queued may read the staging memory and the buffers freed below: let it finish first.
        if (!faulted) quietly(errors, () -> api.streamSynchronize(stream));
        for (CudaBuffer.Mem b : live.toArray(new CudaBuffer.Mem[0])) {
            // The context still holds them; the accounting must show them gone either way.
            long a = b.address();
            if (live.remove(b)) memoryInUse.addAndGet(-b.bytes);
            if (!faulted && a != 0) quietly(errors, () -> api.memFree(a));
        }
        if (!faulted) {
            for (CudaApi.Module m : modules.values()) quietly(errors, () -> api.moduleUnload(m));
            for (Staging st : staging) {
                quietly(errors, () -> api.eventDestroy(st.done()));
                if (st.pinned()) quietly(errors, () -> api.hostFree(st.memory()));
            }
            quietly(errors, () -> api.blasDestroy(blas));
            quietly(errors, () -> api.streamDestroy(stream));
        }
        modules.clear();
        kernels.clear();
        if (stagingArena != null) stagingArena.close();
        // Releasing the last reference to the primary context destroys it, faulted or not: the next backend on
        // this device starts with a fresh one.
        quietly(errors, () -> api.releasePrimaryContext(device.ordinal()));
        if (!errors.isEmpty() && !faulted) throw new IllegalStateException("cuda close: " + String.join("; ", errors));
    }

    private boolean released;

    private static void quietly(List<String> errors, Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            errors.add(e.getMessage());
        }
    }

    // ---- errors ----

    /** Runs one call sequence of the binding; a CUDA failure becomes {@link #failure}. */
    private <T> T guard(String what, Supplier<T> call) {
        try {
            return call.get();
        } catch (CudaException e) {
            throw failure(e);
        }
    }

    /**
     * The exception for a failed call. A sticky status (a kernel fault) closes the backend: it is reported once as
     * the fault of the launches since the last completed synchronisation, and every later call repeats that reason.
     */
    private RuntimeException failure(CudaException e) {
        if (!e.sticky()) return e;
        List<String> recent;
        synchronized (recentLaunches) {
            recent = List.copyOf(recentLaunches);
        }
        // Launches are asynchronous: the fault surfaces at a later call. Only the work issued since the last
        // synchronisation that completed can have caused it; with one launch there, it is that launch's.
        String culprit = switch (recent.size()) {
            case 0 -> "no launch since the last completed synchronisation";
            case 1 -> "a fault of " + recent.getFirst();
            default -> "a fault of one of " + String.join(", ", recent) + " (issued since the last completed synchronisation"
                    + (syncLaunches ? ")" : "; -Drecur.cuda.syncLaunches=true names the faulting launch exactly)");
        };
        String reason = "cuda backend (" + name + ") closed by a device fault: " + e.statusName() + " reported by " + e.call()
                + ": " + culprit;
        if (fault == null) fault = reason;
        closed = true;
        try {
            close();
        } catch (RuntimeException ignored) {
            // The fault is what the caller needs to see; close ignores errors of a dead context.
        }
        return new CudaFaultException(reason, e);
    }

    /** A device fault that closed the backend. */
    public static final class CudaFaultException extends IllegalStateException {
        CudaFaultException(String message, CudaException cause) {
            super(message, cause);
        }
    }

    private void noteLaunch(String what) {
        synchronized (recentLaunches) {
            if (recentLaunches.size() == RECENT_LAUNCHES) recentLaunches.removeFirst();
            recentLaunches.addLast(what);
        }
    }

    /** Everything issued so far has completed without a fault. */
    private void syncedRecently() {
        synchronized (recentLaunches) {
            recentLaunches.clear();
        }
    }

    // ---- checks ----

    private void open() {
        if (closed) throw new IllegalStateException(fault != null ? fault : "cuda backend is closed");
        makeCurrent();
    }

    /** The context must be current on the calling thread; a backend may move between threads over its life. */
    private void makeCurrent() {
        guard("cuCtxSetCurrent", () -> {
            api.setCurrent(context);
            return null;
        });
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
}
