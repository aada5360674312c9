package dev.recur.backend.cuda;

/** A CUDA kernel source did not compile with NVRTC, or its PTX did not load; the message carries the log. */
public final class CudaKernelCompileException extends RuntimeException {
    private final String log;

    public CudaKernelCompileException(String message, String log) {
        super(log == null || log.isBlank() ? message : message + ":\n" + log.strip());
        this.log = log == null ? "" : log;
    }

    /** The compiler's or the JIT linker's log, verbatim (empty if it gave none). */
    public String log() {
        return log;
    }
}
