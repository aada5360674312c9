package dev.recur.backend;

import java.lang.ref.Cleaner;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The safety net for native and device memory a caller forgot to close: objects holding such memory register
 * a cleanup with {@link #register}, which runs on {@link #close()} as usual, or, if the object becomes
 * unreachable while still open, on the garbage collector's schedule. The first object of each kind freed that
 * way logs one warning (logger {@code dev.recur}, level WARNING), since a forgotten {@code close()} holds device
 * memory until a GC happens to run, which on a GPU can be long after the device is full.
 */
public final class Leaks {
    private static final Cleaner CLEANER = Cleaner.create(r -> {
        Thread t = new Thread(r, "recur-cleaner");
        t.setDaemon(true);
        return t;
    });
    private static final System.Logger LOG = System.getLogger("dev.recur");
    private static final Set<String> WARNED = ConcurrentHashMap.newKeySet();
    private static final AtomicLong COLLECTED = new AtomicLong();

    private Leaks() {}

    /** What to release, run exactly once: by an explicit close or, if the owner was forgotten, after GC. */
    public interface Release {
        /** Frees the memory; returns false when there was nothing left to free (already freed elsewhere). */
        boolean release();
    }

    /**
     * The handle of one registered object. {@link #close()} runs the release (the first call only, so closing
     * twice is harmless); {@link #isClosed()} tells whether it has run.
     */
    public static final class Handle {
        private final Cleaner.Cleanable cleanable;
        private final State state;

        private Handle(Cleaner.Cleanable cleanable, State state) {
            this.cleanable = cleanable;
            this.state = state;
        }

        public void close() {
            state.explicit = true;
            cleanable.clean();
        }

        public boolean isClosed() {
            return state.done;
        }
    }

    private static final class State implements Runnable {
        final String kind;
        final Release release;
        volatile boolean explicit;
        volatile boolean done;

        State(String kind, Release release) {
            this.kind = kind;
            this.release = release;
        }

        @Override
        public void run() {
            done = true;
            boolean freed = release.release();
            if (!explicit && freed) {
                COLLECTED.incrementAndGet();
                if (WARNED.add(kind)) {
                    LOG.log(System.Logger.Level.WARNING, kind + " was not closed; its memory was freed by the garbage "
                            + "collector. Close it (try-with-resources) to free memory when you are done with it. "
                            + "(This warning is logged once per kind.)");
                }
            }
        }
    }

    /**
     * Registers {@code owner}, whose memory {@code release} frees. {@code release} must not refer to
     * {@code owner} (else the owner never becomes unreachable); {@code kind} names it in the warning.
     */
    public static Handle register(Object owner, String kind, Release release) {
        State s = new State(kind, release);
        return new Handle(CLEANER.register(owner, s), s);
    }

    /** How many objects in this process were freed after GC instead of closed (a diagnostic for tests). */
    public static long collectedCount() {
        return COLLECTED.get();
    }
}
