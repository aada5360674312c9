package dev.recur.backend.cuda;

import java.util.Set;

/**
 * A CUDA library call that returned a status other than success: which library, which call, the numeric status
 * and the library's own name and description of it ({@code cuGetErrorName}/{@code cuGetErrorString} for the
 * driver, {@code nvrtcGetErrorString} for NVRTC, the status enum's name for cuBLAS).
 */
public final class CudaException extends IllegalStateException {
    /** Driver statuses after which the context is unusable (every later call fails): a fault in a kernel. */
    private static final Set<Integer> STICKY = Set.of(
            214, // CUDA_ERROR_ECC_UNCORRECTABLE
            700, // CUDA_ERROR_ILLEGAL_ADDRESS
            702, // CUDA_ERROR_LAUNCH_TIMEOUT
            710, // CUDA_ERROR_ASSERT
            714, // CUDA_ERROR_HARDWARE_STACK_ERROR
            715, // CUDA_ERROR_ILLEGAL_INSTRUCTION
            716, // CUDA_ERROR_MISALIGNED_ADDRESS
            717, // CUDA_ERROR_INVALID_ADDRESS_SPACE
            718, // CUDA_ERROR_INVALID_PC
            719); // CUDA_ERROR_LAUNCH_FAILED

    /** CUDA_ERROR_OUT_OF_MEMORY. */
    static final int OUT_OF_MEMORY = 2;

    private final String library;
    private final String call;
    private final int code;
    private final String statusName;

    public CudaException(String library, String call, int code, String statusName, String description) {
        super(library + " " + call + " failed: " + (statusName == null ? "status " + code : statusName + " (" + code + ")")
                + (description == null || description.isBlank() || description.equals(statusName) ? "" : ": " + description));
        this.library = library;
        this.call = call;
        this.code = code;
        this.statusName = statusName == null ? "status " + code : statusName;
    }

    /** {@code driver}, {@code NVRTC} or {@code cuBLAS}. */
    public String library() {
        return library;
    }

    public String call() {
        return call;
    }

    public int code() {
        return code;
    }

    public String statusName() {
        return statusName;
    }

    /** A driver status that leaves the context unusable, so the backend must close rather than go on. */
    public boolean sticky() {
        return library.equals("driver") && isSticky(code);
    }

    static boolean isSticky(int driverStatus) {
        return STICKY.contains(driverStatus);
    }
}
