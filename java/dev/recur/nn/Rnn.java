package dev.recur.nn;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.BackendLocks;
import dev.recur.backend.Leaks;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnTrace;
import dev.recur.engine.RnnWeights;
import dev.recur.engine.WeightSpace;
import dev.recur.tensor.Shapes;
import dev.recur.tensor.Tensor;

import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A recurrent network (stacked, optionally bidirectional) bound to a backend: the entry point of the
 * model API. Every argument is checked here, before anything runs, with a message naming the argument,
 * the expected and the actual value; the engine underneath sees only valid, time-major tensors.
 *
 * <p>Two faces over one path. On device tensors ({@link DeviceRnnInput}, {@link DeviceTensor}) inputs, outputs,
 * saved activations and gradients stay on the device, the weights live in one flat {@link WeightSpace} there, and a
 * call moves nothing between host and device. On float64 host {@link Tensor}s each call is a convenience over the
 * same device path: it uploads, runs it and downloads (the reference backend, float64 Java, runs on the host and
 * takes device tensors through the host). {@code checkFinite} applies to host-tensor calls only: checking device
 * tensors would take a download.
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

    /** {@code {T, B}} of an input {@code x} of this shape, after checking its rank, its sizes and the input size. */
    private int[] timeAndBatch(int[] shape) {
        if (shape.length != 3) {
            throw new IllegalArgumentException("x: expected rank 3 " + (config.batchFirst() ? "[B, T, I]" : "[T, B, I]")
                    + ", got shape " + Arrays.toString(shape));
        }
        int t = config.batchFirst() ? shape[1] : shape[0];
        int b = config.batchFirst() ? shape[0] : shape[1];
        if (t <= 0) throw new IllegalArgumentException("x: sequence length T must be > 0, got shape " + Arrays.toString(shape));
        if (b <= 0) throw new IllegalArgumentException("x: batch B must be > 0, got shape " + Arrays.toString(shape));
        if (shape[2] != config.inputSize()) {
            throw new IllegalArgumentException("x: expected input size " + config.inputSize() + " in the last dimension, got shape "
                    + Arrays.toString(shape));
        }
        return new int[] {t, b};
    }

    private RnnOutput run(RnnInput in, boolean training, long seed) {
        ensureOpen();
        if (in == null) throw new IllegalArgumentException("input: must not be null");
        Tensor x = in.x();
        if (x == null) throw new IllegalArgumentException("x: required input is missing");
        int[] tb = timeAndBatch(x.shape());
        int t = tb[0], b = tb[1];
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
        // A device engine zeroes absent states on the device (nothing to upload); the host engines take zero tensors.
        boolean onDevice = engine.runsOnDevice();
        if (h0 == null && !onDevice) h0 = Tensor.zeros(ld, b, config.outSize());
        if (c0 == null && config.cell() == CellType.LSTM && !onDevice) c0 = Tensor.zeros(ld, b, config.hiddenSize());
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
        boolean onDevice = engine.runsOnDevice();
        if (dy == null && !onDevice) dy = Tensor.zeros(y.shape());
        if (config.batchFirst() && dy != null) dy = dy.transpose01();
        if (dhN == null && !onDevice) dhN = Tensor.zeros(ld, b, config.outSize());
        if (dcN == null && config.cell() == CellType.LSTM && !onDevice) dcN = Tensor.zeros(ld, b, config.hiddenSize());
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

    // ------------------------------------------------------------------------------------------------------
    // Device tensors: the path data takes. The host-tensor methods above are conveniences over it (on a device
    // backend the engine uploads, runs this path and downloads).

    /**
     * The network's parameters on the device: one flat buffer with a view per PyTorch name ({@link WeightSpace}).
     * Write it on the device (an optimizer step over {@code weightSpace().flat()}), then call
     * {@link #weightsUpdated()}: nothing is uploaded. Owned by this network (do not close it). Device backends only;
     * the float64 reference keeps its weights on the host ({@link #weights()}).
     */
    public WeightSpace weightSpace() {
        ensureOpen();
        if (!engine.runsOnDevice()) {
            throw new UnsupportedOperationException(backend.name() + ": this backend keeps its weights as float64 host "
                    + "tensors; use weights() and setWeights()");
        }
        lock.lock();
        try {
            ensureOpen();
            return engine.weightSpace();
        } finally {
            lock.unlock();
        }
    }

    /**
     * After writing {@link #weightSpace()} on the device: remakes the kernels' copies of the weights on the device
     * (no host traffic). {@link #weights()} keeps the host weights last set; download the space with
     * {@code weightSpace().toWeights()} when the host needs them.
     */
    public void weightsUpdated() {
        ensureOpen();
        if (!engine.runsOnDevice()) {
            throw new UnsupportedOperationException(backend.name() + ": this backend keeps its weights as float64 host "
                    + "tensors; use setWeights()");
        }
        lock.lock();
        try {
            ensureOpen();
            engine.weightsUpdated();
        } finally {
            lock.unlock();
            Reference.reachabilityFence(this);
        }
    }

    /** A new zeroed gradient space for this network on {@code backend} (the caller owns and closes it). */
    public WeightSpace newGradientSpace(DeviceBackend on) {
        return WeightSpace.allocate(on, config);
    }

    /** Inference on device tensors: saves nothing, no dropout; results in new device tensors the output owns. */
    public DeviceRnnOutput forward(DeviceRnnInput in) {
        return runDevice(in, false, 0L, null);
    }

    /**
     * Inference into caller-supplied result tensors ({@link DeviceRnnOutput#into}; any may be null). Closing the
     * returned output never frees the caller's tensors.
     */
    public DeviceRnnOutput forward(DeviceRnnInput in, DeviceRnnOutput into) {
        return runDevice(in, false, 0L, into);
    }

    /** Training forward on device tensors: dropout from {@code seed}; the output's trace holds what backward needs. */
    public DeviceRnnOutput forwardTraining(DeviceRnnInput in, long seed) {
        return runDevice(in, true, seed, null);
    }

    /** Training forward into caller-supplied result tensors. */
    public DeviceRnnOutput forwardTraining(DeviceRnnInput in, long seed, DeviceRnnOutput into) {
        return runDevice(in, true, seed, into);
    }

    /**
     * Backward on device tensors of {@code sum(y*dy) + sum(h_n*dhN) + sum(c_n*dcN)}: {@code dy}, {@code dhN},
     * {@code dcN} may be null (zeros). The weight gradients go into {@code grads} (a {@link WeightSpace} of this
     * network's configuration, on the same backend; null: not written) as {@code mode} says: {@link GradMode#SET}
     * overwrites, {@link GradMode#ADD} accumulates (micro-batches). {@code dx}, {@code dh0}, {@code dc0} come back in
     * new device tensors the result owns.
     */
    public DeviceRnnGradients backward(DeviceRnnOutput out, DeviceTensor dy, DeviceTensor dhN, DeviceTensor dcN,
                                       WeightSpace grads, GradMode mode) {
        return backward(out, dy, dhN, dcN, grads, mode, null);
    }

    /** As {@link #backward(DeviceRnnOutput, DeviceTensor, DeviceTensor, DeviceTensor, WeightSpace, GradMode)}, into caller-supplied tensors. */
    public DeviceRnnGradients backward(DeviceRnnOutput out, DeviceTensor dy, DeviceTensor dhN, DeviceTensor dcN,
                                       WeightSpace grads, GradMode mode, DeviceRnnGradients into) {
        ensureOpen();
        if (out == null) throw new IllegalArgumentException("out: must not be null");
        if (out.trace() == null) {
            throw new IllegalArgumentException("out: has no saved activations; use forwardTraining, not forward, before backward");
        }
        if (mode == null) throw new IllegalArgumentException("mode: must not be null (GradMode.SET or ADD)");
        DeviceTensor y = out.y();
        DeviceBackend be = y.backend();
        int b = out.hN().dim(1);
        int ld = config.numLayers() * config.directions();
        boolean lstm = config.cell() == CellType.LSTM;
        checkDevice("dy", dy, be, DeviceBuffer.Type.F32, y.shape());
        checkDevice("dhN", dhN, be, DeviceBuffer.Type.F32, ld, b, config.outSize());
        if (lstm) checkDevice("dcN", dcN, be, DeviceBuffer.Type.F32, ld, b, config.hiddenSize());
        else if (dcN != null) throw new IllegalArgumentException("dcN: only LSTM has a cell state, got dcN for cell " + config.cell());
        if (grads != null) {
            if (!grads.config().equals(config) && !sameLayout(grads.config(), config)) {
                throw new IllegalArgumentException("grads: expected a gradient space with this network's parameters "
                        + RnnWeights.shapes(config).keySet() + " (" + WeightSpace.elements(config) + " elements), got one with "
                        + RnnWeights.shapes(grads.config()).keySet() + " (" + WeightSpace.elements(grads.config()) + ")");
            }
            if (grads.backend() != be) {
                throw new IllegalArgumentException("grads: expected a space on backend " + be.name() + ", got one on "
                        + grads.backend().name());
            }
        }
        int[] xShape = {y.dim(0), y.dim(1), config.inputSize()};
        if (into != null) {
            checkDevice("into.dx", into.dx(), be, DeviceBuffer.Type.F32, xShape);
            checkDevice("into.dh0", into.dh0(), be, DeviceBuffer.Type.F32, ld, b, config.outSize());
            if (lstm) checkDevice("into.dc0", into.dc0(), be, DeviceBuffer.Type.F32, ld, b, config.hiddenSize());
        }
        RnnTrace trace = out.trace();
        if (trace instanceof LockedTrace lt) {
            if (lt.engine != engine) {
                throw new IllegalArgumentException("out: its trace was made by another Rnn; pass an output of this "
                        + "network's forwardTraining");
            }
            trace = lt.inner;
        }
        if (!engine.runsOnDevice()) return backwardViaHost(out, trace, dy, dhN, dcN, grads, mode, into, be);
        List<DeviceTensor> made = new ArrayList<>();
        lock.lock();
        try {
            ensureOpen();
            if (out.trace() instanceof LockedTrace lt && lt.isClosed()) {
                throw new IllegalStateException("out: its trace was used after close(); backward needs the saved "
                        + "activations of an open output");
            }
            DeviceTensor dyt = dy;
            if (config.batchFirst() && dy != null) {
                dyt = dy.swap01(null);
                made.add(dyt);
            }
            DeviceRnnGradients intoT = into;
            if (config.batchFirst()) intoT = into == null ? null : DeviceRnnGradients.into(null, into.dh0(), into.dc0());
            DeviceRnnGradients g = engine.backward(trace, dyt, dhN, dcN, grads, mode, intoT);
            if (!config.batchFirst()) return g;
            try {
                DeviceTensor dx = g.dx().swap01(into == null || into.dx() == null ? null : into.dx().view(0, xShape));
                return new DeviceRnnGradients(dx, g.dh0(), g.dc0());
            } finally {
                g.dx().close();
            }
        } finally {
            for (DeviceTensor t : made) t.close();
            lock.unlock();
            Reference.reachabilityFence(out);
            Reference.reachabilityFence(this);
        }
    }

    private DeviceRnnOutput runDevice(DeviceRnnInput in, boolean training, long seed, DeviceRnnOutput into) {
        ensureOpen();
        if (in == null) throw new IllegalArgumentException("input: must not be null");
        DeviceTensor x = in.x();
        if (x == null) throw new IllegalArgumentException("x: required input is missing");
        DeviceBackend be = x.backend();
        if (engine.runsOnDevice() && be != backend) {
            throw new IllegalArgumentException("x: expected a tensor on this network's backend " + backend.name()
                    + ", got one on " + be.name());
        }
        if (x.type() != DeviceBuffer.Type.F32) throw new IllegalArgumentException("x: expected an F32 tensor, got " + x.type());
        int[] tb = timeAndBatch(x.shape());
        int t = tb[0], b = tb[1];
        int ld = config.numLayers() * config.directions();
        boolean lstm = config.cell() == CellType.LSTM;
        checkDevice("h0", in.h0(), be, DeviceBuffer.Type.F32, ld, b, config.outSize());
        if (lstm) checkDevice("c0", in.c0(), be, DeviceBuffer.Type.F32, ld, b, config.hiddenSize());
        else if (in.c0() != null) throw new IllegalArgumentException("c0: only LSTM has a cell state, got c0 for cell " + config.cell());
        checkDevice("lengths", in.lengths(), be, DeviceBuffer.Type.I32, b);
        int w = config.outputWidth();
        int[] yShape = config.batchFirst() ? new int[] {b, t, w} : new int[] {t, b, w};
        if (into != null) {
            checkDevice("into.y", into.y(), be, DeviceBuffer.Type.F32, yShape);
            checkDevice("into.hN", into.hN(), be, DeviceBuffer.Type.F32, ld, b, config.outSize());
            if (lstm) checkDevice("into.cN", into.cN(), be, DeviceBuffer.Type.F32, ld, b, config.hiddenSize());
        }
        if (!engine.runsOnDevice()) return runViaHost(in, training, seed, into, be, yShape);
        DeviceRnnOutput raw;
        DeviceTensor xt = null;
        lock.lock();
        try {
            ensureOpen();
            xt = config.batchFirst() ? x.swap01(null) : x;
            DeviceRnnOutput intoT = into;
            if (config.batchFirst()) intoT = into == null ? null : DeviceRnnOutput.into(null, into.hN(), into.cN());
            raw = engine.forward(new DeviceRnnInput(xt, in.h0(), in.c0(), in.lengths()), training, seed, intoT);
            if (config.batchFirst()) {
                DeviceRnnOutput timeMajor = raw;
                try {
                    DeviceTensor y = timeMajor.y().swap01(into == null || into.y() == null ? null : into.y().view(0, yShape));
                    raw = new DeviceRnnOutput(y, timeMajor.hN(), timeMajor.cN(), timeMajor.trace());
                } catch (RuntimeException | Error e) {
                    timeMajor.close();
                    throw e;
                } finally {
                    timeMajor.y().close();
                }
            }
        } finally {
            if (xt != null && xt != x) xt.close();
            lock.unlock();
            Reference.reachabilityFence(this);
        }
        return raw.trace() == null ? raw
                : new DeviceRnnOutput(raw.y(), raw.hN(), raw.cN(), new LockedTrace(raw.trace(), lock, engine));
    }

    /** The reference (a host engine) on device tensors: a convenience that downloads, runs in float64 and uploads. */
    private DeviceRnnOutput runViaHost(DeviceRnnInput in, boolean training, long seed, DeviceRnnOutput into,
                                       DeviceBackend be, int[] yShape) {
        RnnInput host = new RnnInput(in.x().toTensor(), in.h0() == null ? null : in.h0().toTensor(),
                in.c0() == null ? null : in.c0().toTensor(), in.lengths() == null ? null : in.lengths().toIntArray());
        RnnOutput o = run(host, training, seed);
        List<DeviceTensor> made = new ArrayList<>();
        try {
            DeviceTensor y = upload(o.y(), into == null ? null : into.y(), be, made);
            DeviceTensor hN = upload(o.hN(), into == null ? null : into.hN(), be, made);
            DeviceTensor cN = o.cN() == null ? null : upload(o.cN(), into == null ? null : into.cN(), be, made);
            return new DeviceRnnOutput(y, hN, cN, o.trace());
        } catch (RuntimeException | Error e) {
            for (DeviceTensor t : made) t.close();
            o.close();
            throw e;
        }
    }

    private DeviceRnnGradients backwardViaHost(DeviceRnnOutput out, RnnTrace inner, DeviceTensor dy, DeviceTensor dhN,
                                               DeviceTensor dcN, WeightSpace grads, GradMode mode,
                                               DeviceRnnGradients into, DeviceBackend be) {
        Tensor yHost = Tensor.zeros(out.y().shape());
        Tensor hNHost = Tensor.zeros(out.hN().shape());
        RnnOutput hostOut = new RnnOutput(yHost, hNHost, null, out.trace());
        RnnGradients g = backward(hostOut, dy == null ? null : dy.toTensor(), dhN == null ? null : dhN.toTensor(),
                dcN == null ? null : dcN.toTensor());
        List<DeviceTensor> made = new ArrayList<>();
        try {
            DeviceTensor dx = upload(g.dx(), into == null ? null : into.dx(), be, made);
            DeviceTensor dh0 = upload(g.dh0(), into == null ? null : into.dh0(), be, made);
            DeviceTensor dc0 = g.dc0() == null ? null : upload(g.dc0(), into == null ? null : into.dc0(), be, made);
            if (grads != null) {
                for (String name : grads.names()) {
                    Tensor t = g.weight(name);
                    DeviceTensor v = grads.view(name);
                    if (mode == GradMode.ADD) {
                        Tensor sum = v.toTensor();
                        for (int i = 0; i < sum.data().length; i++) sum.data()[i] += t.data()[i];
                        t = sum;
                    }
                    v.copyFrom(t);
                }
            }
            return new DeviceRnnGradients(dx, dh0, dc0);
        } catch (RuntimeException | Error e) {
            for (DeviceTensor t : made) t.close();
            throw e;
        }
    }

    private static DeviceTensor upload(Tensor t, DeviceTensor into, DeviceBackend be, List<DeviceTensor> made) {
        if (into != null) {
            into.copyFrom(t);
            return into.view(0, into.shape());
        }
        DeviceTensor d = DeviceTensor.of(be, t);
        made.add(d);
        return d;
    }

    /** Whether two configurations have the same parameter names and shapes, in the same order (one weight-space layout). */
    private static boolean sameLayout(RnnConfig a, RnnConfig b) {
        java.util.Map<String, int[]> x = RnnWeights.shapes(a), y = RnnWeights.shapes(b);
        if (!new ArrayList<>(x.keySet()).equals(new ArrayList<>(y.keySet()))) return false;
        for (String k : x.keySet()) if (!Arrays.equals(x.get(k), y.get(k))) return false;
        return true;
    }

    /** Checks an optional device tensor: on {@code be}, of {@code type} and {@code shape}; the message names it. */
    private static void checkDevice(String name, DeviceTensor t, DeviceBackend be, DeviceBuffer.Type type, int... shape) {
        if (t == null) return;
        if (t.backend() != be) {
            throw new IllegalArgumentException(name + ": expected a tensor on backend " + be.name() + ", got one on "
                    + t.backend().name());
        }
        if (t.type() != type) throw new IllegalArgumentException(name + ": expected a " + type + " tensor, got " + t.type());
        if (!Arrays.equals(t.shape(), shape)) {
            throw new IllegalArgumentException(name + ": expected shape " + Arrays.toString(shape) + ", got "
                    + Arrays.toString(t.shape()));
        }
        if (t.isClosed()) throw new IllegalStateException(name + ": tensor used after close()");
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
