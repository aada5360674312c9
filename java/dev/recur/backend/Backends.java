package dev.recur.backend;

import dev.recur.backend.cpu.CpuBackend;
import dev.recur.backend.cuda.CudaBackend;
import dev.recur.backend.opencl.OpenClBackend;
import dev.recur.backend.reference.ReferenceBackend;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Finds and opens backends. Automatic selection takes the first available in the order
 * cuda → opencl → cpu → reference, without printing or throwing for the ones it passes over.
 */
public final class Backends {
    private Backends() {}

    /** Every known backend, in preference order. */
    public static List<BackendProvider> providers() {
        List<BackendProvider> list = new ArrayList<>();
        list.add(CudaBackend.PROVIDER);
        list.add(OpenClBackend.PROVIDER);
        list.add(CpuBackend.PROVIDER);
        list.add(ReferenceBackend.PROVIDER);
        return list;
    }

    public static BackendProvider provider(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        // cuda:N opens device N; plain cuda is device 0.
        if (n.startsWith("cuda:")) return CudaBackend.provider(n);
        List<String> names = new ArrayList<>();
        for (BackendProvider p : providers()) {
            if (p.name().equals(n)) return p;
            names.add(p.name());
        }
        throw new IllegalArgumentException("backend: expected one of " + names + ", got '" + name + "'");
    }

    /** Opens the named backend, or throws {@link BackendUnavailableException} naming why it is unavailable. */
    public static Backend open(String name) {
        BackendProvider p = provider(name);
        BackendProvider.Availability a = p.probe();
        if (!a.available()) throw new BackendUnavailableException("backend " + p.name() + " is unavailable: " + a.detail());
        return p.open();
    }

    /** The name of the backend {@link #openBest()} would open. */
    public static String bestName() {
        for (BackendProvider p : providers()) if (p.probe().available()) return p.name();
        return "reference";
    }

    /** Opens the first available backend in preference order; falls through on failure to open. */
    public static Backend openBest() {
        for (BackendProvider p : providers()) {
            if (!p.probe().available()) continue;
            try {
                return p.open();
            } catch (RuntimeException e) {
                // A backend that probed fine but failed to open (a lost device) is passed over,
                // since the caller asked for automatic selection.
            }
        }
        return ReferenceBackend.PROVIDER.open();
    }

    /**
     * Opens the first available device backend (cuda → opencl → cpu): where device tensors live. Throws
     * {@link BackendUnavailableException} with every reason when none is (the cpu backend needs only the JDK's Vector
     * API module).
     */
    public static DeviceBackend openBestDevice() {
        List<String> reasons = new ArrayList<>();
        for (BackendProvider p : providers()) {
            BackendProvider.Availability a = p.probe();
            if (p == ReferenceBackend.PROVIDER) continue;
            if (!a.available()) {
                reasons.add(p.name() + ": " + a.detail());
                continue;
            }
            try {
                Backend b = p.open();
                if (b instanceof DeviceBackend db) return db;
                b.close();
            } catch (RuntimeException e) {
                reasons.add(p.name() + ": " + e.getMessage());
            }
        }
        throw new BackendUnavailableException("no device backend is available: " + String.join("; ", reasons));
    }
}
