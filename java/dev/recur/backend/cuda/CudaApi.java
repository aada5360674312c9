package dev.recur.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;

/**
 * The one seam between the CUDA backend's logic and a binding of the CUDA libraries: the driver API, NVRTC and
 * cuBLAS, reduced to what {@link CudaBackend}, {@link CudaProbe} and {@link NvrtcCompiler} call. Memory
 * accounting, streams, the GEMM mapping ({@link CublasGemm}), launch shapes, error mapping and the NVRTC cache are
 * written once above it; a binding only forwards calls and turns a non-success status into a
 * {@link CudaException} carrying the library's own name and description of the status.
 *
 * <p>Two bindings exist: {@link PanamaCuda} ({@code java.lang.foreign}, no native jars; the default) and
 * {@link JCudaApi} (JCuda's JNI jars, CUDA 12 only), chosen with {@code -Drecur.cuda.binding=panama|jcuda}.
 * Device addresses are plain {@code long}s; host memory is a native {@link MemorySegment}. Handles are opaque to
 * the backend: each binding has its own records behind the marker interfaces.
 *
 * <p>Nothing here changes process-wide state beyond what the libraries themselves keep (the driver's
 * initialisation and a device's primary context, retained and released in pairs).
 */
interface CudaApi {
    /** A context made current on the calling thread before each call sequence. */
    interface Context {}

    /** A stream of this binding. */
    interface Stream {}

    /** A CUDA event (for ordering staging buffers and for timing). */
    interface Event {}

    /** A loaded module. */
    interface Module {}

    /** A kernel entry point of a loaded module. */
    interface Function {}

    /** A cuBLAS handle. */
    interface Blas {}

    /** One shared library the binding loaded, where from, and its version as the library reports it. */
    record Library(String role, String file, String version) {}

    /** A device as the driver describes it. */
    record DeviceInfo(int ordinal, String name, int major, int minor, long totalBytes, int multiprocessors) {}

    /**
     * What NVRTC produced for one program: {@code status == 0} (NVRTC_SUCCESS) with PTX (and the CUBIN when one
     * was asked for), or the failing status with its name; the log either way (empty when NVRTC wrote none).
     */
    record NvrtcOutput(int status, String statusName, String log, String ptx, byte[] cubin) {}

    /** The three libraries a binding loads, each on its own so that one missing does not hide the others. */
    enum Part {
        DRIVER, NVRTC, CUBLAS
    }

    /** {@code panama} or {@code jcuda}. */
    String binding();

    /**
     * Loads {@code part} if it is not loaded yet; null when it is usable, else one line saying why not (the file
     * names tried). Remembered: a second call gives the same answer without trying again.
     */
    String load(Part part);

    /** The libraries loaded so far, in load order (the driver first). */
    List<Library> libraries();

    // ---- driver ----

    /** cuInit(0): a {@link CudaException} names why the driver cannot run here (no device, too old a driver). */
    void init();

    int driverVersion();

    int deviceCount();

    DeviceInfo device(int ordinal);

    /** Retains device {@code ordinal}'s primary context (released with {@link #releasePrimaryContext}). */
    Context retainPrimaryContext(int ordinal);

    void releasePrimaryContext(int ordinal);

    /** Makes {@code context} current on the calling thread. */
    void setCurrent(Context context);

    /** cuMemAlloc; an out-of-memory status surfaces as a {@link CudaException} whose {@link CudaException#code()} is 2. */
    long memAlloc(long bytes);

    void memFree(long address);

    /** {@code {free, total}} bytes of the current context's device. */
    long[] memInfo();

    /** Page-locked host memory the device copies from and to asynchronously. */
    MemorySegment hostAlloc(long bytes);

    void hostFree(MemorySegment segment);

    void copyHtoD(long dst, MemorySegment src, long bytes, Stream stream);

    void copyDtoH(MemorySegment dst, long src, long bytes, Stream stream);

    void copyDtoD(long dst, long src, long bytes, Stream stream);

    void memsetD32(long dst, int bits, long count, Stream stream);

    /** A non-blocking stream (it does not synchronise with the legacy default stream). */
    Stream streamCreate();

    void streamSynchronize(Stream stream);

    void streamDestroy(Stream stream);

    /** An event; {@code timing} false makes it cheaper (ordering only). */
    Event eventCreate(boolean timing);

    void eventRecord(Event event, Stream stream);

    void eventSynchronize(Event event);

    /** Milliseconds between two recorded, completed timing events. */
    float eventElapsed(Event start, Event end);

    void eventDestroy(Event event);

    Module moduleLoad(byte[] image);

    void moduleUnload(Module module);

    Function function(Module module, String name);

    /** CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK of a function. */
    int maxThreadsPerBlock(Function function);

    /**
     * Launches {@code function} on {@code stream}. Each argument is a {@link Long} (a device address), an
     * {@link Integer} or a {@link Float}, in the kernel's parameter order.
     */
    void launch(Function function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                Stream stream, Object[] args);

    // ---- NVRTC ----

    /** {@code {major, minor}}. */
    int[] nvrtcVersion();

    /** The real architectures this NVRTC compiles for, ascending (empty when it cannot say). */
    int[] nvrtcArchs();

    /** Compiles one program; headers maps include names to texts. A compile error is a result, not an exception. */
    NvrtcOutput nvrtcCompile(String name, String source, Map<String, String> headers, List<String> options, boolean cubin);

    // ---- cuBLAS ----

    Blas blasCreate();

    void blasDestroy(Blas blas);

    void blasSetStream(Blas blas, Stream stream);

    /** Full float32 math: TF32 tensor-core math would break parity with the float64 reference. */
    void blasDefaultMath(Blas blas);

    /**
     * The column-major call {@code g} describes: {@code cublasSgemm} when {@code g.batch() == 1}, else
     * {@code cublasSgemmStridedBatched}; alpha and beta are host values.
     */
    void sgemm(Blas blas, CublasGemm g, float alpha, long first, long second, float beta, long c);
}
