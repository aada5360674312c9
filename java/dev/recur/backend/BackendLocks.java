package dev.recur.backend;

import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One lock per backend instance, which the model classes ({@code Rnn}, {@code Attention}) hold for each call
 * into an engine. A backend is used by one thread at a time (see {@link DeviceBackend}): an OpenCL backend
 * shares its kernel objects, whose arguments {@code clSetKernelArg} sets, between every network on it, and an
 * engine keeps per-call workspaces. Holding this lock makes networks on a shared backend safe to call from
 * several threads; calls on one backend run one after another (open one backend per thread to run them in
 * parallel).
 *
 * <p>The locks are non-fair {@link ReentrantLock}s held in a weak map, so a closed and forgotten backend does
 * not keep its lock alive.
 */
public final class BackendLocks {
    private static final Map<Backend, ReentrantLock> LOCKS = new WeakHashMap<>();

    private BackendLocks() {}

    /** The lock of {@code backend} (the same object for the same instance, for as long as it is reachable). */
    public static ReentrantLock of(Backend backend) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        synchronized (LOCKS) {
            return LOCKS.computeIfAbsent(backend, b -> new ReentrantLock());
        }
    }
}
