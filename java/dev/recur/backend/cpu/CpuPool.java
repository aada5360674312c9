package dev.recur.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of persistent worker threads that run one batch of numbered tasks at a time, with the
 * calling thread taking part. An RNN calls thousands of small GEMMs and pointwise passes per second, so
 * starting threads or going through an executor's queues per call would cost more than the work: workers
 * instead spin briefly on the current batch after each one (the next step's GEMM usually follows within
 * microseconds) and only then park.
 *
 * <p>One batch runs at a time (callers take a lock); a batch started from inside a task runs inline on the
 * thread running that task, so nested use cannot deadlock.
 */
public final class CpuPool implements AutoCloseable {
    /** A batch body: called once per task index, with the index of the thread running it (0 = caller). */
    @FunctionalInterface
    public interface Task {
        void run(int task, int thread);
    }

    /**
     * How long an idle worker polls before parking: longer than the host-side gaps between the operations of one
     * network call (conversions, small copies), so a call's products do not pay a wake-up system call each.
     */
    private static final long SPIN_NANOS = 1_000_000L;

    private final int threads;
    private final Worker[] workers;
    /** The latest batch; workers compare it by identity with the last one they saw. */
    private volatile Batch current;
    private volatile boolean closed;
    /** A batch is in progress (only the thread holding the lock can see this true at entry: re-entry). */
    private boolean running;

    /**
     * One batch with its own counters. The caller waits for the batch's tasks, not for the workers: on a
     * loaded machine a worker may not be scheduled for milliseconds, and the caller then simply runs every
     * task itself; a worker that wakes late claims from its old batch's counter, finds it exhausted, and
     * cannot disturb the next batch.
     */
    private static final class Batch {
        final Task body;
        final int n;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        volatile Throwable failure;

        Batch(Task body, int n) {
            this.body = body;
            this.n = n;
        }

        void drain(int thread) {
            for (int t = next.getAndIncrement(); t < n; t = next.getAndIncrement()) {
                try {
                    // After a failure the remaining tasks are counted but not run.
                    if (failure == null) body.run(t, thread);
                } catch (Throwable e) {
                    if (failure == null) failure = e;
                } finally {
                    done.incrementAndGet();
                }
            }
        }
    }

    /**
     * @param threads total threads taking part in a batch, including the caller; at least 1
     */
    public CpuPool(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads: expected >= 1, got " + threads);
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    /** Threads taking part in a batch, the caller included. */
    public int threads() {
        return threads;
    }

    /**
     * Whether the workers may touch {@code segment}: false for a segment of a confined arena owned by the
     * caller, which work on it must then run on the calling thread alone.
     */
    public boolean shareable(MemorySegment segment) {
        return workers.length == 0 || segment.isAccessibleBy(workers[0]);
    }

    /**
     * Runs {@code body} for every task index in [0, tasks), spread over the pool, and returns when all have
     * finished. The first exception thrown by any task is rethrown here after the batch has drained.
     */
    public void run(int tasks, Task body) {
        if (closed) throw new IllegalStateException("CpuPool: already closed");
        if (tasks <= 0) return;
        // A worker must not wait for the lock: the caller holding it is waiting for this worker.
        if (Thread.currentThread() instanceof Worker w) {
            for (int t = 0; t < tasks; t++) body.run(t, w.index);
            return;
        }
        runLocked(tasks, body);
    }

    private synchronized void runLocked(int tasks, Task body) {
        if (closed) throw new IllegalStateException("CpuPool: already closed");
        if (tasks == 1 || workers.length == 0 || running) {
            // One task, no workers, or a batch started from inside a task on the caller's thread: run here.
            for (int t = 0; t < tasks; t++) body.run(t, 0);
            return;
        }
        running = true;
        try {
            runBatch(tasks, body);
        } finally {
            running = false;
        }
    }

    private void runBatch(int tasks, Task body) {
        Batch b = new Batch(body, tasks);
        current = b;
        for (Worker w : workers) {
            if (w.sleeping) LockSupport.unpark(w);
        }
        b.drain(0);
        int spins = 0;
        while (b.done.get() < tasks) {
            if (++spins < 1 << 16) Thread.onSpinWait();
            else Thread.yield();
        }
        Throwable f = b.failure;
        if (f != null) {
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error e) throw e;
            throw new IllegalStateException("CpuPool: a task failed", f);
        }
    }

    /** Stops the workers; a batch in progress finishes first (run is synchronized). */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w);
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends Thread {
        private final int index;
        private final Batch startBatch;
        volatile boolean sleeping;

        Worker(int index) {
            super("recur-cpu-" + index);
            this.index = index;
            this.startBatch = current;
            setDaemon(true);
        }

        @Override
        public void run() {
            // Start from the batch the pool had when this worker was made, not when the thread got going: a
            // batch posted in between must not be taken as already seen. (Missing one would only cost speed
            // now, as the caller runs unclaimed tasks itself.)
            Batch seen = startBatch;
            while (true) {
                Batch b = awaitNewBatch(seen);
                if (closed) return;
                seen = b;
                b.drain(index);
            }
        }

        private Batch awaitNewBatch(Batch seen) {
            long start = System.nanoTime();
            Batch b;
            int polls = 0;
            while ((b = current) == seen && !closed) {
                if ((++polls & 63) != 0 || System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                // Dekker-style handshake with runBatch(): publish that we sleep, then re-check the batch, so a
                // post that did not see the flag is seen here instead.
                sleeping = true;
                if ((b = current) != seen || closed) {
                    sleeping = false;
                    return b;
                }
                LockSupport.park(this);
                sleeping = false;
                start = System.nanoTime();
            }
            return b;
        }
    }
}
