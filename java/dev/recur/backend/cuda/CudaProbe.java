package dev.recur.backend.cuda;

import dev.recur.backend.BackendProvider.Availability;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Finds out once per JVM whether CUDA can run here, and if not, exactly why: the binding
 * ({@code -Drecur.cuda.binding=panama}, the default, or {@code jcuda}), each library it loaded with its version,
 * or the one it could not find with the file names tried, then the devices. Nothing here throws.
 */
final class CudaProbe {
    /** The system property choosing the binding. */
    static final String BINDING_PROPERTY = "recur.cuda.binding";

    /**
     * What the probe found.
     *
     * @param api     the binding (null when even the binding could not be set up)
     * @param devices every device the driver lists, by ordinal (empty when unavailable)
     * @param libraries the libraries loaded and their versions, one line
     */
    record Result(boolean available, String detail, CudaApi api, List<CudaApi.DeviceInfo> devices, int driverVersion,
                  String libraries) {
        Availability availability() {
            return available ? Availability.yes(detail) : Availability.no(detail);
        }
    }

    private static Result cached;
    private static CudaApi api;

    private CudaProbe() {}

    static synchronized Result result() {
        if (cached == null) cached = run();
        return cached;
    }

    /**
     * The binding the property names, made once per JVM. JCuda classes are touched only when {@code jcuda} is
     * chosen: loading them prints nothing, but their natives need CUDA 12 libraries.
     */
    static synchronized CudaApi api() {
        if (api == null) {
            String b = System.getProperty(BINDING_PROPERTY, "panama").strip().toLowerCase(Locale.ROOT);
            api = switch (b) {
                case "panama" -> new PanamaCuda(CudaLibraries.standard());
                case "jcuda" -> jcuda();
                default -> throw new IllegalArgumentException(BINDING_PROPERTY + ": expected panama or jcuda, got '"
                        + System.getProperty(BINDING_PROPERTY) + "'");
            };
        }
        return api;
    }

    /** JCuda is an optional dependency of recur: a trainer that chooses it adds the jars. */
    private static CudaApi jcuda() {
        try {
            return new JCudaApi();
        } catch (NoClassDefFoundError e) {
            throw new IllegalStateException(BINDING_PROPERTY + "=jcuda: " + JCudaApi.MISSING_JARS + " (" + e.getMessage() + ")");
        }
    }

    private static Result run() {
        CudaApi a;
        try {
            a = api();
        } catch (RuntimeException e) {
            return unavailable(null, e.getMessage());
        }
        List<String> missing = new ArrayList<>();
        // Each library is tried even when an earlier one is missing, so one message names everything to install.
        for (CudaApi.Part part : CudaApi.Part.values()) {
            String why = a.load(part);
            if (why != null) missing.add(why);
        }
        String libs = libraries(a);
        if (!missing.isEmpty()) {
            String where = a.binding().equals("panama") ? " (" + CudaLibraries.standard().searched() + ")" : "";
            return unavailable(a, String.join("; ", missing) + where + (libs.isEmpty() ? "" : "; loaded: " + libs));
        }
        try {
            a.init();
            int count = a.deviceCount();
            if (count == 0) return unavailable(a, "no CUDA device (" + libs + ")");
            List<CudaApi.DeviceInfo> devices = new ArrayList<>();
            for (int i = 0; i < count; i++) devices.add(a.device(i));
            int driverVersion = a.driverVersion();
            StringBuilder d = new StringBuilder();
            for (CudaApi.DeviceInfo dev : devices) {
                if (!d.isEmpty()) d.append(", ");
                d.append("cuda:").append(dev.ordinal()).append(' ').append(describe(dev));
            }
            d.append(" (default cuda:0); ").append(a.binding()).append(" binding: ").append(libs);
            return new Result(true, d.toString(), a, List.copyOf(devices), driverVersion, libs);
        } catch (CudaException e) {
            String hint = e.code() == 35 ? " (the NVIDIA driver is older than the CUDA API this binding needs)" : "";
            return unavailable(a, e.getMessage() + hint + " (" + libs + ")");
        } catch (RuntimeException | LinkageError e) {
            return unavailable(a, firstLine(e) + " (" + libs + ")");
        }
    }

    static String describe(CudaApi.DeviceInfo dev) {
        return String.format(Locale.ROOT, "%s (sm_%d%d, %.1f GiB, %d SMs)", dev.name(), dev.major(), dev.minor(),
                dev.totalBytes() / (double) (1L << 30), dev.multiprocessors());
    }

    /** Each loaded library as {@code role version (file)}. */
    static String libraries(CudaApi a) {
        List<String> parts = new ArrayList<>();
        for (CudaApi.Library l : a.libraries()) parts.add(l.role() + " " + l.version() + " (" + l.file() + ")");
        return String.join(", ", parts);
    }

    /** A CUDA version number as the driver gives it (13000) as text (13.0). */
    static String version(int v) {
        return v / 1000 + "." + v % 1000 / 10;
    }

    private static Result unavailable(CudaApi a, String reason) {
        return new Result(false, reason, a, List.of(), 0, a == null ? "" : libraries(a));
    }

    private static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (nl < 0 ? m : m.substring(0, nl));
    }
}
