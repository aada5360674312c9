package dev.recur.backend;

/** Probes and opens one kind of backend. Probing never throws: it reports why a backend is unavailable. */
public interface BackendProvider {
    String name();

    /** Whether this backend can be opened here, and if not, the exact reason. */
    Availability probe();

    /** Opens the backend; throws {@link BackendUnavailableException} with the probe's reason if it cannot. */
    Backend open();

    /**
     * @param available whether {@link #open()} will succeed
     * @param detail    device names and memory when available, the reason (missing library, no device) when not
     */
    record Availability(boolean available, String detail) {
        public static Availability yes(String detail) {
            return new Availability(true, detail);
        }

        public static Availability no(String reason) {
            return new Availability(false, reason);
        }
    }
}
