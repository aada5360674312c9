package dev.recur.device;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The device backends the parametrized suites run over, one row each. A row whose backend is not
 * available here is skipped with the reason — except that with {@code -Drecur.ci=true} a missing OpenCL
 * (which CI installs as PoCL) fails the test instead; {@code -Drecur.test.backends=cuda} (a comma list) runs only
 * the rows named. Backends are opened once per JVM and shared.
 */
public final class DeviceRows {
    /** Backend names, in the order the rows appear. */
    public static final List<String> NAMES = List.of("opencl", "cpu", "cuda");

    private static final Map<String, DeviceBackend> OPEN = new HashMap<>();

    private DeviceRows() {}

    static boolean ci() {
        return "true".equalsIgnoreCase(System.getProperty("recur.ci", "").trim());
    }

    /** Must the named backend run here (CI requires OpenCL)? */
    static boolean required(String name) {
        return ci() && name.equals("opencl");
    }

    /**
     * The rows {@code -Drecur.test.backends} (a comma list) selects, or null for all: the GPU check
     * ({@code bench/gpu/run}) runs the device suites with {@code cuda} alone.
     */
    static List<String> selected() {
        String v = System.getProperty("recur.test.backends", "").trim();
        return v.isEmpty() ? null : List.of(v.split("\\s*,\\s*"));
    }

    /** The opened backend for a row, or a skip (a failure when required) naming why it is unavailable. */
    public static synchronized DeviceBackend backend(String name) {
        DeviceBackend open = OPEN.get(name);
        if (open != null) return open;
        List<String> only = selected();
        if (only != null && !only.contains(name)) {
            Assumptions.abort("skipped: row " + name + " not selected (-Drecur.test.backends=" + String.join(",", only) + ")");
        }
        BackendProvider provider = null;
        for (BackendProvider p : Backends.providers()) if (p.name().equals(name)) provider = p;
        String reason;
        if (provider == null) {
            reason = "backend " + name + " is not registered in Backends.providers()";
        } else {
            BackendProvider.Availability a = provider.probe();
            if (a.available()) {
                Backend b = provider.open();
                if (!(b instanceof DeviceBackend db)) {
                    b.close();
                    throw new AssertionError("backend " + name + " is not a DeviceBackend: " + b.getClass());
                }
                OPEN.put(name, db);
                return db;
            }
            reason = "backend " + name + " unavailable: " + a.detail();
        }
        if (required(name)) Assertions.fail("recur.ci=true requires the " + name + " backend, but " + reason);
        Assumptions.abort("skipped: " + reason);
        throw new AssertionError("unreachable");
    }
}
