package dev.recur.nn;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendLocks;
import dev.recur.backend.Leaks;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnTrace;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Shapes;
import dev.recur.tensor.Tensor;

import java.lang.ref.Reference;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A recurrent network (stacked, optionally bidirectional) bound to a backend: the entry point of the
 * model API. Every argument is checked here, before anything runs, with a message naming the argument,
 * the expected and the actual value; the engine underneath sees only valid, time-major tensors.
 *
 * <pre>{@code
 * RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 32, 64).layers(2).bidirectional(true).build();
 * try (Backend be = Backends.openBest(); Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 42))) {
 *     try (RnnOutput out = rnn.forwardTraining(RnnInput.of(x), 7)) {
 *         RnnGradients g = rnn.backward(out, dy, null, null);
 *     }
 * }
 * }</pre>
 *
 * <h2>Threads</h2>
 * Safe to use from several threads: each call into the backend ({@link #forward}, {@link #forwardTraining},
 * {@link #backward}, {@link #setWeights}, {@link #close}, and closing an output's trace) holds the lock of the
 * backend instance ({@link BackendLocks}), so calls on one backend, from one shared {@code Rnn} or from many
 * {@code Rnn}s, run one after another, each with the result it would have had alone. Argument checks and
 * layout conversions run outside the lock. For parallel speed-up open one backend per thread. An output's
 * trace must go back to the {@code Rnn} that made it; {@code RnnWeights} may be shared (they are read, and
 * uploaded by {@code create}/{@code setWeights}; do not change a weight tensor while a call that reads it runs).
 *
 * <h2>Determinism</h2>
 * The same inputs, weights, seed and backend give bit-identical outputs and gradients, call after call and
 * whichever thread calls. Across backends results differ by rounding (reference float64, devices float32).
 * On the {@code cpu} backend the thread count ({@code recur.cpu.threads}) changes only how GEMMs and kernels
 * are split over output rows and columns, never the order of a sum (a GEMM's K loop and column sums run in the
 * same order on every split), so results are meant to be independent of it, but only a fixed thread count is
 * tested. On OpenCL the results depend on the device and driver and on the GEMM
 * ({@code recur.opencl.gemm=hand|clblast}).
 *
 * <h2>Resources</h2>
 * Holds device memory until {@link #close()} (closing twice is harmless; any call after it throws
 * {@link IllegalStateException}). A training output holds its saved activations until it is
 * {@link RnnOutput#close() closed}. A network or output that is forgotten without closing is freed after
 * garbage collection, with a warning logged once ({@link Leaks}).
 */
public final class Rnn implements AutoCloseable {
    private final RnnConfig config;
    private final Backend backend;
    private final RnnEngine engine;
    private final ReentrantLock lock;
    private final Leaks.Handle handle;
    private volatile RnnWeights weights;
    private volatile boolean checkFinite;

    private Rnn(RnnConfig config, Backend backend, RnnEngine engine, RnnWeights weights, ReentrantLock lock) {
        this.config = config;
        this.backend = backend;
        this.engine = engine;
        this.weights = weights;
        this.lock = lock;
        // The release refers to the engine and the lock only, never to this Rnn, so a forgotten Rnn is collectable.
        this.handle = Leaks.register(this, "An Rnn", () -> {
            lock.lock();
            try {
                engine.close();
            } finally {
                lock.unlock();
            }
            return true;
        });
    }

    /** Binds a network to a backend and loads its weights (which must match {@code config}). */
    public static Rnn create(RnnConfig config, Backend backend, RnnWeights weights) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        checkWeights(config, weights);
        ReentrantLock lock = BackendLocks.of(backend);
        lock.lock();
        try {
            RnnEngine engine = Engines.rnn(backend, config);
            try {
                engine.setWeights(weights);
            } catch (RuntimeException | Error e) {
                engine.close();
                throw e;
            }
            return new Rnn(config, backend, engine, weights, lock);
        } finally {
            lock.unlock();
        }
    }

    private static void checkWeights(RnnConfig config, RnnWeights weights) {
        if (weights == null) throw new IllegalArgumentException("weights: must not be null");
        if (!weights.config().equals(config)) {
            // Same names and shapes are what matter; re-validate against this configuration.
            RnnWeights.of(config, weights.asMap());
        }
    }

    public RnnConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    public RnnWeights weights() {
        return weights;
    }

    /** Replaces the weights (e.g. after an optimizer step). */
    public void setWeights(RnnWeights w) {
        ensureOpen();
        checkWeights(config, w);
        if (checkFinite) w.asMap().forEach(Shapes::requireFinite);
        lock.lock();
        try {
            ensureOpen();
            engine.setWeights(w);
            this.weights = w;
        } finally {
            lock.unlock();
            Reference.reachabilityFence(this);
        }
    }

    /**
     * When on, inputs, weights and output gradients are checked for NaN and infinity before each call (an
     * {@link IllegalArgumentException} naming the tensor and the first bad index), and results and gradients
     * after it (an {@link ArithmeticException} naming the result: the model diverged).
     */
    public Rnn checkFinite(boolean on) {
        this.checkFinite = on;
        return this;
    }

    /** Inference: saves nothing, no dropout. */
    public RnnOutput forward(RnnInput in) {
        return run(in, false, 0L);
    }

    /** Training mode: applies dropout from {@code seed} and saves what {@link #backward} needs. */
    public RnnOutput forwardTraining(RnnInput in, long seed) {
        return run(in, true, seed);
    }

    private RnnOutput run(RnnInput in, boolean training, long seed) {
        ensureOpen();
        if (in == null) throw new IllegalArgumentException("input: must not be null");
        Tensor x = in.x();
        if (x == null) throw new IllegalArgumentException("x: required input is missing");
        if (x.rank() != 3) {
            throw new IllegalArgumentException("x: expected rank 3 " + (config.batchFirst() ? "[B, T, I]" : "[T, B, I]")
                    + ", got shape " + Arrays.toString(x.shape()));
        }
        int t = config.batchFirst() ? x.dim(1) : x.dim(0);
        int b = config.batchFirst() ? x.dim(0) : x.dim(1);
        if (t <= 0) throw new IllegalArgumentException("x: sequence length T must be > 0, got shape " + Arrays.toString(x.shape()));
        if (b <= 0) throw new IllegalArgumentException("x: batch B must be > 0, got shape " + Arrays.toString(x.shape()));
        if (x.dim(2) != config.inputSize()) {
            throw new IllegalArgumentException("x: expected input size " + config.inputSize() + " in the last dimension, got shape "
                    + Arrays.toString(x.shape()));
        }
        int ld = config.numLayers() * config.directions();
        Tensor h0 = Shapes.optional("h0", in.h0(), ld, b, config.outSize());
        Tensor c0 = in.c0();
        if (config.cell() == CellType.LSTM) {
            c0 = Shapes.optional("c0", c0, ld, b, config.hiddenSize());
        } else if (c0 != null) {
            throw new IllegalArgumentException("c0: only LSTM has a cell state, got c0 for cell " + config.cell());
        }
        int[] lengths = checkLengths(in.lengths(), t, b);
        if (checkFinite) {
            Shapes.requireFinite("x", x);
            Shapes.requireFinite("h0", h0);
            Shapes.requireFinite("c0", c0);
            // Weights are live tensors a caller may have changed since they were set: check them on every call.
            weights.asMap().forEach(Shapes::requireFinite);
        }
        Tensor xt = config.batchFirst() ? x.transpose01() : x;
        if (h0 == null) h0 = Tensor.zeros(ld, b, config.outSize());
        if (c0 == null && config.cell() == CellType.LSTM) c0 = Tensor.zeros(ld, b, config.hiddenSize());
        RnnOutput raw;
        lock.lock();
        try {
            ensureOpen();
            raw = engine.forward(xt, h0, c0, lengths, training, seed);
        } finally {
            lock.unlock();
            Reference.reachabilityFence(this);
        }
        RnnOutput out = raw.trace() == null ? raw
                : new RnnOutput(raw.y(), raw.hN(), raw.cN(), new LockedTrace(raw.trace(), lock, engine));
        if (checkFinite) {
            try {
                Shapes.requireFinite("y (result)", out.y());
                Shapes.requireFinite("h_n (result)", out.hN());
                Shapes.requireFinite("c_n (result)", out.cN());
            } catch (IllegalArgumentException e) {
                out.close();
                throw new ArithmeticException(e.getMessage());
            }
        }
        if (config.batchFirst()) return new RnnOutput(out.y().transpose01(), out.hN(), out.cN(), out.trace());
        return out;
    }

    static int[] checkLengths(int[] lengths, int t, int b) {
        if (lengths == null) {
            int[] all = new int[b];
            Arrays.fill(all, t);
            return all;
        }
        if (lengths.length != b) {
            throw new IllegalArgumentException("lengths: expected " + b + " entries (batch size), got " + lengths.length);
        }
        for (int i = 0; i < b; i++) {
            if (lengths[i] < 1 || lengths[i] > t) {
                throw new IllegalArgumentException("lengths: entry " + i + " must be in [1, " + t + "], got " + lengths[i]);
            }
        }
        return lengths.clone();
    }

    /**
     * Backward through time of {@code sum(y*dy) + sum(h_n*dhN) + sum(c_n*dcN)}.
     *
     * @param out the result of {@link #forwardTraining} on this network
     * @param dy  same shape as {@code out.y()}; null = zeros
     * @param dhN {@code [L*D, B, Hout]}; null = zeros
     * @param dcN {@code [L*D, B, H]} (LSTM); null = zeros
     */
    public RnnGradients backward(RnnOutput out, Tensor dy, Tensor dhN, Tensor dcN) {
        ensureOpen();
        if (out == null) throw new IllegalArgumentException("out: must not be null");
        if (out.trace() == null) {
            throw new IllegalArgumentException("out: has no saved activations; use forwardTraining, not forward, before backward");
        }
        Tensor y = out.y();
        dy = Shapes.optional("dy", dy, y.shape());
        int b = out.hN().dim(1);
        int ld = config.numLayers() * config.directions();
        dhN = Shapes.optional("dhN", dhN, ld, b, config.outSize());
        if (config.cell() == CellType.LSTM) {
            dcN = Shapes.optional("dcN", dcN, ld, b, config.hiddenSize());
        } else if (dcN != null) {
            throw new IllegalArgumentException("dcN: only LSTM has a cell state, got dcN for cell " + config.cell());
        }
        if (checkFinite) {
            Shapes.requireFinite("dy", dy);
            Shapes.requireFinite("dhN", dhN);
            Shapes.requireFinite("dcN", dcN);
        }
        if (dy == null) dy = Tensor.zeros(y.shape());
        if (config.batchFirst()) dy = dy.transpose01();
        if (dhN == null) dhN = Tensor.zeros(ld, b, config.outSize());
        if (dcN == null && config.cell() == CellType.LSTM) dcN = Tensor.zeros(ld, b, config.hiddenSize());
        RnnTrace trace = out.trace();
        if (trace instanceof LockedTrace lt) {
            if (lt.engine != engine) {
                throw new IllegalArgumentException("out: its trace was made by another Rnn; pass an output of this "
                        + "network's forwardTraining");
            }
            trace = lt.inner;
        }
        RnnGradients g;
        lock.lock();
        try {
            ensureOpen();
            if (out.trace() instanceof LockedTrace lt && lt.isClosed()) {
                throw new IllegalStateException("out: its trace was used after close(); backward needs the saved "
                        + "activations of an open output");
            }
            g = engine.backward(trace, dy, dhN, dcN);
        } finally {
            lock.unlock();
            // The output's trace must not be collected (and freed) while backward reads it.
            Reference.reachabilityFence(out);
            Reference.reachabilityFence(this);
        }
        if (checkFinite) {
            try {
                Shapes.requireFinite("dx (result)", g.dx());
                Shapes.requireFinite("dh0 (result)", g.dh0());
                Shapes.requireFinite("dc0 (result)", g.dc0());
                g.weights().forEach((name, t) -> Shapes.requireFinite("gradient of " + name + " (result)", t));
            } catch (IllegalArgumentException e) {
                throw new ArithmeticException(e.getMessage());
            }
        }
        if (config.batchFirst()) g = new RnnGradients(g.dx().transpose01(), g.dh0(), g.dc0(), g.weights());
        return g;
    }

    private void ensureOpen() {
        if (handle.isClosed()) {
            throw new IllegalStateException("Rnn: used after close() (" + config.cell() + " on backend " + backend.name() + ")");
        }
    }

    /** Releases the engine's device memory (waiting for a call running on the backend). Closing twice is harmless. */
    @Override
    public void close() {
        handle.close();
    }

    /**
     * A training output's trace as handed to callers: closing it holds the backend lock (the engine's trace
     * bookkeeping and the device are shared with other threads), and a forgotten one is freed after GC.
     */
    private static final class LockedTrace implements RnnTrace {
        final RnnTrace inner;
        final RnnEngine engine;
        private final Leaks.Handle handle;

        LockedTrace(RnnTrace inner, ReentrantLock lock, RnnEngine engine) {
            this.inner = inner;
            this.engine = engine;
            this.handle = Leaks.register(this, "An RnnOutput of forwardTraining (its trace)", () -> {
                lock.lock();
                try {
                    inner.close();
                } finally {
                    lock.unlock();
                }
                return true;
            });
        }

        boolean isClosed() {
            return handle.isClosed();
        }

        @Override
        public long savedBytes() {
            return inner.savedBytes();
        }

        @Override
        public void close() {
            handle.close();
        }
    }
}
