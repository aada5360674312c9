package dev.recur.backend.reference;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;

/**
 * The oracle: plain Java, float64 throughout, the equations as the literature writes them. Every other
 * backend is tested against it. Always available.
 */
public final class ReferenceBackend implements Backend {
    public static final BackendProvider PROVIDER = new BackendProvider() {
        @Override
        public String name() {
            return "reference";
        }

        @Override
        public Availability probe() {
            return Availability.yes("plain Java, float64 (" + Runtime.version() + ")");
        }

        @Override
        public Backend open() {
            return new ReferenceBackend();
        }
    };

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public String deviceName() {
        return "Java float64 on the host CPU";
    }

    @Override
    public void close() {
        // Nothing held.
    }
}
