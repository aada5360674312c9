package dev.recur.backend.opencl;

/** The OpenCL compiler rejected the kernels; the message carries the compiler's full build log. */
public final class KernelBuildException extends RuntimeException {
    private final String buildLog;

    public KernelBuildException(String what, String buildLog, Throwable cause) {
        super(what + "\n--- build log ---\n" + buildLog, cause);
        this.buildLog = buildLog;
    }

    public String buildLog() {
        return buildLog;
    }
}
