package dev.recur.backend.cpu;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link CpuPool}: every task exactly once, failures reported to the caller, nesting, reuse and close. */
class CpuPoolTest {
    @Test
    void runsEveryTaskOnceOverTheThreads() {
        try (CpuPool pool = new CpuPool(3)) {
            for (int round = 0; round < 200; round++) {
                int n = 1 + round % 37;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                Set<Integer> threads = ConcurrentHashMap.newKeySet();
                pool.run(n, (t, th) -> {
                    hits.incrementAndGet(t);
                    threads.add(th);
                });
                for (int t = 0; t < n; t++) assertEquals(1, hits.get(t), "round " + round + ": runs of task " + t);
                for (int th : threads) assertTrue(th >= 0 && th < 3, "thread index " + th);
            }
        }
    }

    @Test
    void aBatchPostedBeforeTheWorkersStartIsNotLost() {
        // A worker that read the generation only once running would take this first batch as already seen.
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int i = 0; i < 200; i++) {
                try (CpuPool pool = new CpuPool(3)) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(6);
                    pool.run(6, (t, th) -> hits.incrementAndGet(t));
                    for (int t = 0; t < 6; t++) assertEquals(1, hits.get(t), "pool " + i + ": runs of task " + t);
                }
            }
        });
    }

    @Test
    void aFailingTaskIsRethrownAndThePoolStaysUsable() {
        try (CpuPool pool = new CpuPool(2)) {
            IllegalStateException boom = new IllegalStateException("task 5 failed");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.run(64, (t, th) -> {
                if (t == 5) throw boom;
            }));
            assertSame(boom, e);
            AtomicIntegerArray hits = new AtomicIntegerArray(16);
            pool.run(16, (t, th) -> hits.incrementAndGet(t));
            for (int t = 0; t < 16; t++) assertEquals(1, hits.get(t), "after a failure, runs of task " + t);
        }
    }

    @Test
    void nestedBatchesRunInlineInsteadOfDeadlocking() {
        try (CpuPool pool = new CpuPool(2)) {
            AtomicIntegerArray hits = new AtomicIntegerArray(8 * 8);
            pool.run(8, (outer, th) -> pool.run(8, (inner, th2) -> hits.incrementAndGet(outer * 8 + inner)));
            for (int i = 0; i < 64; i++) assertEquals(1, hits.get(i), "nested task " + i);
        }
    }

    @Test
    void closedPoolRefusesWorkAndBadSizesAreRefused() {
        CpuPool pool = new CpuPool(2);
        pool.close();
        pool.close();
        assertThrows(IllegalStateException.class, () -> pool.run(2, (t, th) -> { }));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new CpuPool(0));
        assertTrue(e.getMessage().contains("threads"), e.getMessage());
    }
}
