package dev.recur.reliability;

import dev.recur.backend.Backend;
import dev.recur.config.AttentionConfig;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.attention.Attention;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.stream.Stream;

/**
 * Eight threads run training forwards and backwards on shared weights, each with its own inputs and dropout
 * seed, on one backend: first each thread with its own {@link Rnn}, then all threads on one shared {@code Rnn}.
 * Every result must be bit-identical to the same step run alone on one thread. Without the per-backend lock
 * the OpenCL backend's shared kernel objects (whose arguments clSetKernelArg sets) and the engines' workspaces
 * would mix the threads' data.
 */
class ConcurrencyTest {
    static final int THREADS = 8, REPEATS = 3, T = 5, B = 3;
    static final RnnConfig CFG = RnnConfig.builder(CellType.LSTM, 6, 8).layers(2).bidirectional(true)
            .inputDropout(0.2).recurrentDropout(0.1).dropout(0.3).build();

    static Stream<String> backends() {
        return Runs.BACKENDS.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void eightThreadsWithTheirOwnRnnOnOneBackendMatchSingleThreadedRuns(String name) throws Exception {
        try (Backend be = Runs.open(name)) {
            RnnWeights w = RnnWeights.init(CFG, 5);
            Runs.Result[] expected = singleThreaded(be, w);
            List<Rnn> rnns = new ArrayList<>();
            try {
                for (int i = 0; i < THREADS; i++) rnns.add(Rnn.create(CFG, be, w));
                runConcurrently(name + ", own Rnn per thread", expected, rnns::get);
            } finally {
                for (Rnn r : rnns) r.close();
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void eightThreadsOnOneSharedRnnMatchSingleThreadedRuns(String name) throws Exception {
        try (Backend be = Runs.open(name)) {
            RnnWeights w = RnnWeights.init(CFG, 5);
            Runs.Result[] expected = singleThreaded(be, w);
            try (Rnn shared = Rnn.create(CFG, be, w)) {
                runConcurrently(name + ", one shared Rnn", expected, i -> shared);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void eightThreadsOnOneSharedAttentionMatchSingleThreadedRuns(String name) throws Exception {
        AttentionConfig cfg = AttentionConfig.additive(6, 7, 5);
        try (Backend be = Runs.open(name); Attention att = Attention.create(cfg, be, AttentionWeights.init(cfg, 3))) {
            Runs.Result[] expected = new Runs.Result[THREADS];
            for (int i = 0; i < THREADS; i++) expected[i] = attentionStep(att, i);
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<Future<?>> futures = new ArrayList<>();
                for (int i = 0; i < THREADS; i++) {
                    int id = i;
                    futures.add(pool.submit(() -> {
                        start.await();
                        for (int rep = 0; rep < REPEATS; rep++) {
                            attentionStep(att, id).assertBitIdentical(name + ", shared Attention, thread " + id
                                    + ", repeat " + rep, expected[id]);
                        }
                        return null;
                    }));
                }
                start.countDown();
                for (Future<?> f : futures) f.get(5, TimeUnit.MINUTES);
            } finally {
                pool.shutdownNow();
            }
        }
    }

    private static Runs.Result attentionStep(Attention att, int i) {
        SplittableRandom r = new SplittableRandom(500 + i);
        Tensor dec = Runs.random(r, 3, 2, 6), enc = Runs.random(r, 5, 2, 7), dctx = Runs.random(r, 3, 2, 7);
        Tensor mask = Attention.maskFromLengths(new int[] {5, 1 + i % 5}, 5);
        Map<String, Tensor> m = new LinkedHashMap<>();
        AttentionOutput out = att.forward(dec, enc, mask);
        m.put("scores", out.scores());
        m.put("weights", out.weights());
        m.put("context", out.context());
        AttentionGradients g = att.backward(dec, enc, mask, dctx);
        m.put("dscores", g.dscores());
        m.put("ddec", g.ddec());
        m.put("denc", g.denc());
        g.dweights().forEach((k, v) -> m.put("d" + k, v));
        return new Runs.Result(m);
    }

    private static Runs.Result[] singleThreaded(Backend be, RnnWeights w) {
        Runs.Result[] expected = new Runs.Result[THREADS];
        try (Rnn rnn = Rnn.create(CFG, be, w)) {
            for (int i = 0; i < THREADS; i++) expected[i] = Runs.Case.of(CFG, T, B, i).run(rnn);
        }
        // The cases differ, so a thread that got another thread's data cannot match by accident.
        for (int i = 1; i < THREADS; i++) {
            if (expected[i].tensors().get("y").data()[0] == expected[0].tensors().get("y").data()[0]) {
                throw new AssertionError("cases 0 and " + i + " have the same y[0]: the test inputs do not differ");
            }
        }
        return expected;
    }

    private static void runConcurrently(String what, Runs.Result[] expected, IntFunction<Rnn> rnnOf) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < THREADS; i++) {
                int id = i;
                futures.add(pool.submit(() -> {
                    Runs.Case c = Runs.Case.of(CFG, T, B, id);
                    start.await();
                    for (int rep = 0; rep < REPEATS; rep++) {
                        c.run(rnnOf.apply(id)).assertBitIdentical(what + ", thread " + id + ", repeat " + rep, expected[id]);
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : futures) f.get(5, TimeUnit.MINUTES);
        } finally {
            pool.shutdownNow();
        }
    }
}
