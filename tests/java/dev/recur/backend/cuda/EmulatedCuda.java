package dev.recur.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link CudaApi} that keeps "device" memory in host arrays, for testing {@link CudaBackend}'s own logic where no
 * GPU exists (this build machine has none): staging and chunking of copies, memory accounting, which stream each call
 * goes to, the launch shapes and argument marshalling, the cuBLAS call it makes, and what a sticky fault does. Copies
 * and memsets really move bytes, in issue order (as one stream would); launches and GEMMs are recorded, not run: the
 * kernels and cuBLAS themselves are checked on a real device by CudaBackendContractTest and bench/gpu/run.
 */
final class EmulatedCuda implements CudaApi {
    /** One recorded launch. */
    record Launch(String kernel, int[] grid, int[] block, Object[] args, Stream stream) {}

    /** One recorded GEMM. */
    record Gemm(CublasGemm call, float alpha, long first, long second, float beta, long c) {}

    private record H(String kind, int id) implements Context, Stream, Event, Module, Function, Blas {}

    private record Mod(List<String> entries) {}

    private final AtomicInteger ids = new AtomicInteger();
    private final TreeMap<Long, byte[]> memory = new TreeMap<>();
    private final Map<H, Mod> modules = new java.util.HashMap<>();
    private final Map<H, String> functions = new java.util.HashMap<>();
    private long nextAddress = 0x7f00_0000_0000L;
    final long capacity;
    final int maxThreadsPerBlock;
    long allocated;
    int primaryRetained;
    int pinnedLive;
    int freed;
    final List<Launch> launches = new ArrayList<>();
    final List<Gemm> gemms = new ArrayList<>();
    final List<Stream> copyStreams = new ArrayList<>();
    Stream blasStream;
    int eventWaits;
    Stream created;
    /** A status the next synchronisation returns, as a faulting kernel makes every later call return (sticky). */
    Integer stickyFault;

    EmulatedCuda(long capacity, int maxThreadsPerBlock) {
        this.capacity = capacity;
        this.maxThreadsPerBlock = maxThreadsPerBlock;
    }

    @Override
    public String binding() {
        return "emulated";
    }

    @Override
    public List<Library> libraries() {
        return List.of();
    }

    @Override
    public String load(Part part) {
        return null;
    }

    private void sticky(String call) {
        if (stickyFault != null) throw new CudaException("driver", call, stickyFault, errorName(stickyFault), errorString(stickyFault));
    }

    @Override
    public void init() {}

    @Override
    public int driverVersion() {
        return 13000;
    }

    @Override
    public int deviceCount() {
        return 1;
    }

    @Override
    public DeviceInfo device(int ordinal) {
        return new DeviceInfo(ordinal, "Emulated", 9, 0, capacity, 132);
    }

    @Override
    public Context retainPrimaryContext(int ordinal) {
        primaryRetained++;
        return new H("context", ordinal);
    }

    @Override
    public void releasePrimaryContext(int ordinal) {
        primaryRetained--;
    }

    @Override
    public void setCurrent(Context context) {}

    @Override
    public synchronized long memAlloc(long bytes) {
        sticky("cuMemAlloc");
        if (allocated + bytes > capacity) throw new CudaException("driver", "cuMemAlloc", CudaException.OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory");
        long a = nextAddress;
        nextAddress += (bytes + 255) / 256 * 256 + 256;
        memory.put(a, new byte[Math.toIntExact(bytes)]);
        allocated += bytes;
        return a;
    }

    /** cuMemFree calls so far (the cleaner calls it from its own thread). */
    synchronized int freedCount() {
        return freed;
    }

    @Override
    public synchronized void memFree(long address) {
        byte[] m = memory.remove(address);
        if (m == null) throw new CudaException("driver", "cuMemFree", 1, "CUDA_ERROR_INVALID_VALUE", "not an allocation");
        allocated -= m.length;
        freed++;
    }

    @Override
    public synchronized long[] memInfo() {
        return new long[] {capacity - allocated, capacity};
    }

    @Override
    public MemorySegment hostAlloc(long bytes) {
        pinnedLive++;
        return Arena.global().allocate(bytes, 64);
    }

    @Override
    public void hostFree(MemorySegment segment) {
        pinnedLive--;
    }

    /** The array holding {@code [address, address + bytes)} and the offset of {@code address} in it. */
    private synchronized Map.Entry<byte[], Integer> at(long address, long bytes, String call) {
        Map.Entry<Long, byte[]> e = memory.floorEntry(address);
        if (e == null || address - e.getKey() + bytes > e.getValue().length) {
            throw new CudaException("driver", call, 1, "CUDA_ERROR_INVALID_VALUE", "[" + Long.toHexString(address) + ", +" + bytes
                    + ") is outside every allocation");
        }
        return Map.entry(e.getValue(), (int) (address - e.getKey()));
    }

    /** Reads floats back from emulated device memory (for the tests' checks). */
    float[] floats(long address, int count) {
        Map.Entry<byte[], Integer> m = at(address, 4L * count, "test read");
        return MemorySegment.ofArray(m.getKey()).asSlice(m.getValue(), 4L * count).toArray(ValueLayout.JAVA_FLOAT);
    }

    @Override
    public void copyHtoD(long dst, MemorySegment src, long bytes, Stream stream) {
        sticky("cuMemcpyHtoDAsync");
        copyStreams.add(stream);
        Map.Entry<byte[], Integer> m = at(dst, bytes, "cuMemcpyHtoDAsync");
        MemorySegment.copy(src, 0, MemorySegment.ofArray(m.getKey()), m.getValue(), bytes);
    }

    @Override
    public void copyDtoH(MemorySegment dst, long src, long bytes, Stream stream) {
        sticky("cuMemcpyDtoHAsync");
        copyStreams.add(stream);
        Map.Entry<byte[], Integer> m = at(src, bytes, "cuMemcpyDtoHAsync");
        MemorySegment.copy(MemorySegment.ofArray(m.getKey()), m.getValue(), dst, 0, bytes);
    }

    @Override
    public void copyDtoD(long dst, long src, long bytes, Stream stream) {
        sticky("cuMemcpyDtoDAsync");
        copyStreams.add(stream);
        Map.Entry<byte[], Integer> s = at(src, bytes, "cuMemcpyDtoDAsync");
        Map.Entry<byte[], Integer> d = at(dst, bytes, "cuMemcpyDtoDAsync");
        System.arraycopy(s.getKey(), s.getValue(), d.getKey(), d.getValue(), (int) bytes);
    }

    @Override
    public void memsetD32(long dst, int bits, long count, Stream stream) {
        sticky("cuMemsetD32Async");
        copyStreams.add(stream);
        Map.Entry<byte[], Integer> d = at(dst, 4 * count, "cuMemsetD32Async");
        MemorySegment seg = MemorySegment.ofArray(d.getKey());
        for (long i = 0; i < count; i++) seg.set(ValueLayout.JAVA_INT_UNALIGNED, d.getValue() + 4 * i, bits);
    }

    @Override
    public Stream streamCreate() {
        created = new H("stream", ids.incrementAndGet());
        return created;
    }

    @Override
    public void streamSynchronize(Stream stream) {
        sticky("cuStreamSynchronize");
    }

    @Override
    public void streamDestroy(Stream stream) {}

    @Override
    public Event eventCreate(boolean timing) {
        return new H("event", ids.incrementAndGet());
    }

    @Override
    public void eventRecord(Event event, Stream stream) {
        sticky("cuEventRecord");
    }

    @Override
    public void eventSynchronize(Event event) {
        eventWaits++;
        sticky("cuEventSynchronize");
    }

    @Override
    public float eventElapsed(Event start, Event end) {
        return 0.25f;
    }

    @Override
    public void eventDestroy(Event event) {}

    @Override
    public Module moduleLoad(byte[] image) {
        String text = new String(image, StandardCharsets.UTF_8);
        H h = new H("module", ids.incrementAndGet());
        modules.put(h, new Mod(List.copyOf(PtxEntries.parse(text).keySet())));
        return h;
    }

    @Override
    public void moduleUnload(Module module) {}

    @Override
    public Function function(Module module, String name) {
        if (!modules.get((H) module).entries().contains(name)) {
            throw new CudaException("driver", "cuModuleGetFunction", 500, "CUDA_ERROR_NOT_FOUND", name);
        }
        H h = new H("function", ids.incrementAndGet());
        functions.put(h, name);
        return h;
    }

    @Override
    public int maxThreadsPerBlock(Function function) {
        return maxThreadsPerBlock;
    }

    @Override
    public void launch(Function function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                       Stream stream, Object[] args) {
        sticky("cuLaunchKernel");
        launches.add(new Launch(functions.get((H) function), new int[] {gridX, gridY, gridZ}, new int[] {blockX, blockY, blockZ},
                args.clone(), stream));
    }

    String errorName(int status) {
        return switch (status) {
            case 700 -> "CUDA_ERROR_ILLEGAL_ADDRESS";
            case 2 -> "CUDA_ERROR_OUT_OF_MEMORY";
            default -> "CUDA_ERROR_" + status;
        };
    }

    String errorString(int status) {
        return status == 700 ? "an illegal memory access was encountered" : "status " + status;
    }

    @Override
    public int[] nvrtcVersion() {
        return new int[] {13, 0};
    }

    @Override
    public int[] nvrtcArchs() {
        return new int[] {75, 80, 86, 89, 90};
    }

    /**
     * "Compiles" a unit into a PTX-like text declaring its entry points with the parameter kinds of its source, which
     * is all the backend reads from PTX.
     */
    @Override
    public NvrtcOutput nvrtcCompile(String name, String source, Map<String, String> headers, List<String> options, boolean cubin) {
        StringBuilder ptx = new StringBuilder(".version 9.0\n.target sm_90\n");
        // A family's entry points are written once in kernels/entry/<family>.h, which the unit includes.
        StringBuilder text = new StringBuilder(source);
        for (Map.Entry<String, String> h : headers.entrySet()) if (h.getKey().startsWith("entry/")) text.append('\n').append(h.getValue());
        for (Map.Entry<String, List<PtxEntries.Kind>> e : KernelSignatures.of(text.toString(), name).entrySet()) {
            ptx.append(".visible .entry ").append(e.getKey()).append("(");
            List<PtxEntries.Kind> kinds = e.getValue();
            for (int i = 0; i < kinds.size(); i++) {
                String t = switch (kinds.get(i)) {
                    case POINTER -> "u64";
                    case INT -> "u32";
                    case FLOAT -> "f32";
                };
                ptx.append(i == 0 ? "" : ",").append("\n .param .").append(t).append(" p").append(i);
            }
            ptx.append("\n)\n{\n}\n");
        }
        return new NvrtcOutput(0, "NVRTC_SUCCESS", "", ptx.toString(), cubin ? ptx.toString().getBytes(StandardCharsets.UTF_8) : null);
    }

    @Override
    public Blas blasCreate() {
        return new H("blas", ids.incrementAndGet());
    }

    @Override
    public void blasDestroy(Blas blas) {}

    @Override
    public void blasSetStream(Blas blas, Stream stream) {
        blasStream = stream;
    }

    @Override
    public void blasDefaultMath(Blas blas) {}

    @Override
    public void sgemm(Blas blas, CublasGemm g, float alpha, long first, long second, float beta, long c) {
        sticky("cublasSgemm");
        gemms.add(new Gemm(g, alpha, first, second, beta, c));
    }
}
