package dev.recur.nn.attention;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendLocks;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Leaks;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.DeviceAttentionGradients;
import dev.recur.engine.DeviceAttentionOutput;
import dev.recur.engine.GradMode;
import dev.recur.nn.Engines;
import dev.recur.tensor.Shapes;
import dev.recur.tensor.Tensor;

import java.lang.ref.Reference;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Attention of decoder states {@code dec [U, B, Hd]} over encoder states {@code enc [T, B, He]} (both
 * time-major), bound to a backend: the model API's entry point. Every argument is checked here, before
 * anything runs, with a message naming the argument, the expected and the actual value.
 *
 * <pre>
 *   scores[u,b,t]  = score(dec[u,b,:], enc[t,b,:])                    (see {@link AttentionScore})
 *   weights[u,b,:] = masked softmax of scores[u,b,:] over t with mask[b,t] = 1
 *                    (exactly 0 where mask[b,t] = 0; all 0 if every position of the row is masked)
 *   context[u,b,:] = sum_t weights[u,b,t] * enc[t,b,:]
 * </pre>
 * {@link #backward} returns the gradients of {@code sum(context * dcontext)} with respect to the raw scores,
 * {@code dec}, {@code enc} and every parameter.
 *
 * <p>On the reference backend the computation is float64; on a {@link DeviceBackend} it runs in float32 through
 * GEMMs and the kernels of {@link dev.recur.backend.AttentionKernels}, and holds device memory until
 * {@link #close()}; on the {@code cpu} backend, {@code CpuAttention} fuses each batch row's work instead (the same
 * float32 math).
 *
 * <p>Threads: safe to use from several threads. Each call into the backend holds the backend instance's lock
 * ({@link BackendLocks}), so calls on one backend run one after another (as for {@code Rnn}); results are
 * bit-identical to running the same calls alone. Resources: closing twice is harmless, a call after
 * {@link #close()} throws {@link IllegalStateException}, and a forgotten instance is freed after GC with a
 * warning logged once ({@link Leaks}).
 *
 * <pre>{@code
 * AttentionConfig cfg = AttentionConfig.additive(64, 128, 32);
 * try (Attention att = Attention.create(cfg, backend, AttentionWeights.init(cfg, 7))) {
 *     AttentionOutput out = att.forward(dec, enc, Attention.maskFromLengths(lengths, enc.dim(0)));
 *     AttentionGradients g = att.backward(dec, enc, mask, dcontext);
 * }
 * }</pre>
 */
public final class Attention implements AutoCloseable {
    private final AttentionConfig config;
    private final Backend backend;
    private final AttentionEngine engine;
    private volatile AttentionWeights weights;
    /** Set by {@link #weightsUpdated()}: a host engine apart from the device one (cpu) must reload from the device. */
    private volatile boolean hostEngineStale;
    private final ReentrantLock lock;
    private final Leaks.Handle handle;

    /** The engine for device tensors where {@link #engine} does not run on them (cpu: the schedule); set by create. */
    private final AttentionEngine[] deviceEngine = new AttentionEngine[1];

    private Attention(AttentionConfig config, Backend backend, AttentionEngine engine, AttentionWeights weights,
                      ReentrantLock lock) {
        this.config = config;
        this.backend = backend;
        this.engine = engine;
        this.weights = weights;
        this.lock = lock;
        AttentionEngine[] second = deviceEngine;
        this.handle = Leaks.register(this, "An Attention", () -> {
            lock.lock();
            try {
                engine.close();
            } finally {
                try {
                    if (second[0] != null) second[0].close();
                } finally {
                    lock.unlock();
                }
            }
            return true;
        });
    }

    private <R> R locked(java.util.function.Supplier<R> call) {
        lock.lock();
        try {
            ensureOpen();
            return call.get();
        } finally {
            lock.unlock();
            Reference.reachabilityFence(this);
        }
    }

    /**
     * Binds attention to a backend ({@code reference} or any {@link DeviceBackend}) with the given weights,
     * which must match {@code config}.
     */
    public static Attention create(AttentionConfig config, Backend backend, AttentionWeights weights) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        AttentionWeights w = checkWeights(config, weights);
        ReentrantLock lock = BackendLocks.of(backend);
        lock.lock();
        try {
            return create(config, backend, w, lock);
        } finally {
            lock.unlock();
        }
    }

    private static Attention create(AttentionConfig config, Backend backend, AttentionWeights w, ReentrantLock lock) {
        AttentionEngine engine = Engines.attention(backend, config);
        AttentionEngine onDevice = null;
        try {
            engine.setWeights(w);
            // A device backend whose engine works on host tensors (cpu's fused one) gets the shared schedule for
            // device tensors beside it, loaded now, so that no device call ever uploads weights.
            if (backend instanceof DeviceBackend db && !engine.runsOnDevice()) {
                onDevice = Engines.deviceAttention(db, config);
                onDevice.setWeights(w);
            }
        } catch (RuntimeException | Error e) {
            engine.close();
            if (onDevice != null) onDevice.close();
            throw e;
        }
        Attention a = new Attention(config, backend, engine, w, lock);
        a.deviceEngine[0] = onDevice;
        return a;
    }

    private static AttentionWeights checkWeights(AttentionConfig config, AttentionWeights weights) {
        if (weights == null) throw new IllegalArgumentException("weights: must not be null");
        return weights.config().equals(config) ? weights : AttentionWeights.of(config, weights.asMap());
    }

    public AttentionConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    public AttentionWeights weights() {
        return weights;
    }

    /** Replaces the weights (e.g. after an optimizer step). */
    public void setWeights(AttentionWeights w) {
        ensureOpen();
        AttentionWeights checked = checkWeights(config, w);
        locked(() -> {
            engine.setWeights(checked);
            if (deviceEngine[0] != null) deviceEngine[0].setWeights(checked);
            this.weights = checked;
            hostEngineStale = false;
            return null;
        });
    }

    /**
     * The parameters the device-tensor calls ({@link #forward(DeviceTensor, DeviceTensor, DeviceTensor)},
     * {@link #backward(DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor, Map, GradMode)}) read, as device
     * tensors of {@code config().weightShapes()} (empty for dot and scaled), owned by this attention (do not close the
     * buffers). Write them on the device (an optimizer step), then call {@link #weightsUpdated()}: nothing is
     * uploaded. {@link #setWeights} overwrites them. Device backends only: the reference keeps float64 host weights.
     */
    public Map<String, DeviceTensor> deviceWeights() {
        ensureOpen();
        if (!(backend instanceof DeviceBackend db)) {
            throw new UnsupportedOperationException(backend.name() + ": this backend keeps its attention weights as float64 "
                    + "host tensors; use weights() and setWeights()");
        }
        return locked(() -> {
            Map<String, DeviceBuffer> bufs = deviceEngine().deviceWeights();
            Map<String, DeviceTensor> out = new java.util.LinkedHashMap<>();
            for (Map.Entry<String, int[]> e : config.weightShapes().entrySet()) {
                out.put(e.getKey(), DeviceTensor.over(db, bufs.get(e.getKey()), e.getValue()));
            }
            return java.util.Collections.unmodifiableMap(out);
        });
    }

    /**
     * After writing {@link #deviceWeights()} on the device: the device-tensor calls already read the new values; where
     * the host-tensor calls run on a separate engine with its own copy (the {@code cpu} backend's fused one), that copy
     * is reloaded from the device before its next call (a download then, none now). {@link #weights()} keeps the host
     * weights last set, as {@code Rnn.weightsUpdated} does.
     */
    public void weightsUpdated() {
        ensureOpen();
        if (!(backend instanceof DeviceBackend)) {
            throw new UnsupportedOperationException(backend.name() + ": this backend keeps its attention weights as float64 "
                    + "host tensors; use setWeights()");
        }
        if (!engine.runsOnDevice() && !config.weightShapes().isEmpty()) hostEngineStale = true;
    }

    /** Under the lock: reloads a separate host engine from the device parameters after {@link #weightsUpdated()}. */
    private void refreshHostEngine() {
        if (!hostEngineStale) return;
        DeviceBackend db = (DeviceBackend) backend;
        Map<String, DeviceBuffer> bufs = deviceEngine().deviceWeights();
        Map<String, Tensor> host = new java.util.LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : config.weightShapes().entrySet()) {
            Tensor t = Tensor.zeros(e.getValue());
            db.downloadDoubles(bufs.get(e.getKey()), 0, t.data(), 0, t.data().length);
            host.put(e.getKey(), t);
        }
        engine.setWeights(AttentionWeights.of(config, host));
        hostEngineStale = false;
    }

    /**
     * A {@code [B, T]} mask with 1 at {@code t < lengths[b]} and 0 beyond; each length must be in [0, T]
     * (a length of 0 masks the whole row, whose weights are then all 0).
     */
    public static Tensor maskFromLengths(int[] lengths, int t) {
        if (lengths == null) throw new IllegalArgumentException("lengths: must not be null");
        if (t <= 0) throw new IllegalArgumentException("T: expected > 0, got " + t);
        Tensor m = Tensor.zeros(lengths.length, t);
        for (int b = 0; b < lengths.length; b++) {
            if (lengths[b] < 0 || lengths[b] > t) {
                throw new IllegalArgumentException("lengths: entry " + b + " must be in [0, " + t + "], got " + lengths[b]);
            }
            Arrays.fill(m.data(), b * t, b * t + lengths[b], 1.0);
        }
        return m;
    }

    /** The forward pass; {@code mask [B, T]} of 0/1 values, or null for no masking. */
    public AttentionOutput forward(Tensor dec, Tensor enc, Tensor mask) {
        ensureOpen();
        int[] m = checkInputs(dec, enc, mask);
        return locked(() -> {
            refreshHostEngine();
            return engine.forward(dec, enc, m);
        });
    }

    /**
     * Gradients of {@code sum(context * dcontext)} for the forward pass of the same arguments (recomputed here,
     * so no state is kept between calls).
     *
     * @param dcontext {@code [U, B, He]}
     */
    public AttentionGradients backward(Tensor dec, Tensor enc, Tensor mask, Tensor dcontext) {
        ensureOpen();
        int[] m = checkInputs(dec, enc, mask);
        Shapes.require("dcontext", dcontext, dec.dim(0), dec.dim(1), config.encoderSize());
        return locked(() -> {
            refreshHostEngine();
            return engine.backward(dec, enc, m, dcontext);
        });
    }

    // ------------------------------------------------------------------------------------------------------
    // Device tensors

    /**
     * The forward pass on device tensors: {@code dec [U, B, Hd]}, {@code enc [T, B, He]} (F32), {@code mask [B, T]}
     * (I32 of 0/1, or null for no masking; its values are trusted, since checking them would take a download), all on
     * this attention's backend. Results in new device tensors the output owns; nothing crosses to the host. On the
     * {@code cpu} backend these calls run the shared schedule, which holds a second copy of the weights on the device
     * (loaded with the first, by {@code create} and {@code setWeights}); on the reference backend they go through
     * the host.
     */
    public DeviceAttentionOutput forward(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask) {
        ensureOpen();
        checkDeviceInputs(dec, enc, mask);
        if (!(backend instanceof DeviceBackend)) {
            AttentionOutput o = forward(dec.toTensor(), enc.toTensor(), mask == null ? null : hostMask(mask));
            return uploadAll(dec.backend(), o.scores(), o.weights(), o.context(), DeviceAttentionOutput.class);
        }
        return locked(() -> deviceEngine().forward(dec, enc, mask));
    }

    /**
     * Gradients on device tensors of {@code sum(context * dcontext)} ({@code dcontext [U, B, He]}): the data gradients
     * come back in new device tensors; each parameter's gradient goes into {@code grads.get(name)} (a device tensor of
     * the parameter's shape for every name of {@code config().weightShapes()}; null: not written) as {@code mode} says.
     */
    public DeviceAttentionGradients backward(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask, DeviceTensor dcontext,
                                             Map<String, DeviceTensor> grads, GradMode mode) {
        ensureOpen();
        checkDeviceInputs(dec, enc, mask);
        DeviceBackend be = dec.backend();
        checkDevice("dcontext", dcontext, be, DeviceBuffer.Type.F32, dec.dim(0), dec.dim(1), config.encoderSize());
        if (dcontext == null) throw new IllegalArgumentException("dcontext: required tensor [U, B, He] is missing");
        if (mode == null) throw new IllegalArgumentException("mode: must not be null (GradMode.SET or ADD)");
        if (grads != null) {
            for (Map.Entry<String, int[]> e : config.weightShapes().entrySet()) {
                DeviceTensor g = grads.get(e.getKey());
                if (g == null) throw new IllegalArgumentException("grads: no tensor for parameter '" + e.getKey() + "'");
                checkDevice("grads[" + e.getKey() + "]", g, be, DeviceBuffer.Type.F32, e.getValue());
            }
        }
        if (!(backend instanceof DeviceBackend)) {
            AttentionGradients g = backward(dec.toTensor(), enc.toTensor(), mask == null ? null : hostMask(mask),
                    dcontext.toTensor());
            if (grads != null) {
                for (Map.Entry<String, Tensor> e : g.dweights().entrySet()) {
                    DeviceTensor v = grads.get(e.getKey());
                    Tensor t = e.getValue();
                    if (mode == GradMode.ADD) {
                        Tensor sum = v.toTensor();
                        for (int i = 0; i < sum.data().length; i++) sum.data()[i] += t.data()[i];
                        t = sum;
                    }
                    v.copyFrom(t);
                }
            }
            return uploadAll(be, g.dscores(), g.ddec(), g.denc(), DeviceAttentionGradients.class);
        }
        return locked(() -> deviceEngine().backward(dec, enc, mask, dcontext, grads, mode));
    }

    /** The engine device calls run on. */
    private AttentionEngine deviceEngine() {
        return engine.runsOnDevice() ? engine : deviceEngine[0];
    }

    private void checkDeviceInputs(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask) {
        if (dec == null) throw new IllegalArgumentException("dec: required tensor [U, B, " + config.decoderSize() + "] is missing");
        if (enc == null) throw new IllegalArgumentException("enc: required tensor [T, B, " + config.encoderSize() + "] is missing");
        DeviceBackend be = dec.backend();
        if (backend instanceof DeviceBackend && be != backend) {
            throw new IllegalArgumentException("dec: expected a tensor on this attention's backend " + backend.name()
                    + ", got one on " + be.name());
        }
        if (dec.rank() != 3 || dec.dim(2) != config.decoderSize() || dec.dim(0) <= 0 || dec.dim(1) <= 0
                || dec.type() != DeviceBuffer.Type.F32) {
            throw new IllegalArgumentException("dec: expected an F32 tensor [U > 0, B > 0, " + config.decoderSize() + "], got "
                    + dec.type() + " " + Arrays.toString(dec.shape()));
        }
        if (enc.rank() != 3 || enc.dim(0) <= 0) {
            throw new IllegalArgumentException("enc: expected shape [T > 0, B, " + config.encoderSize() + "], got "
                    + Arrays.toString(enc.shape()));
        }
        checkDevice("enc", enc, be, DeviceBuffer.Type.F32, enc.dim(0), dec.dim(1), config.encoderSize());
        checkDevice("mask", mask, be, DeviceBuffer.Type.I32, dec.dim(1), enc.dim(0));
    }

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
    }

    private static Tensor hostMask(DeviceTensor mask) {
        int[] m = mask.toIntArray();
        Tensor t = Tensor.zeros(mask.shape());
        for (int i = 0; i < m.length; i++) t.data()[i] = m[i];
        return t;
    }

    /** The reference's results uploaded to {@code be} as a device record of three tensors. */
    private static <R> R uploadAll(DeviceBackend be, Tensor a, Tensor b, Tensor c, Class<R> kind) {
        DeviceTensor x = null, y = null, z = null;
        try {
            x = DeviceTensor.of(be, a);
            y = DeviceTensor.of(be, b);
            z = DeviceTensor.of(be, c);
            Object r = kind == DeviceAttentionOutput.class ? new DeviceAttentionOutput(x, y, z) : new DeviceAttentionGradients(x, y, z);
            return kind.cast(r);
        } catch (RuntimeException | Error e) {
            for (DeviceTensor t : new DeviceTensor[] {x, y, z}) if (t != null) t.close();
            throw e;
        }
    }

    private int[] checkInputs(Tensor dec, Tensor enc, Tensor mask) {
        if (dec == null) throw new IllegalArgumentException("dec: required tensor [U, B, " + config.decoderSize() + "] is missing");
        if (enc == null) throw new IllegalArgumentException("enc: required tensor [T, B, " + config.encoderSize() + "] is missing");
        if (dec.rank() != 3 || dec.dim(2) != config.decoderSize() || dec.dim(0) <= 0 || dec.dim(1) <= 0) {
            throw new IllegalArgumentException("dec: expected shape [U > 0, B > 0, " + config.decoderSize() + "], got "
                    + Arrays.toString(dec.shape()));
        }
        if (enc.rank() != 3 || enc.dim(2) != config.encoderSize() || enc.dim(0) <= 0) {
            throw new IllegalArgumentException("enc: expected shape [T > 0, B, " + config.encoderSize() + "], got "
                    + Arrays.toString(enc.shape()));
        }
        if (enc.dim(1) != dec.dim(1)) {
            throw new IllegalArgumentException("enc: expected batch " + dec.dim(1) + " (from dec) in dimension 1, got shape "
                    + Arrays.toString(enc.shape()));
        }
        int b = dec.dim(1), t = enc.dim(0);
        int[] m = new int[b * t];
        if (mask == null) {
            Arrays.fill(m, 1);
            return m;
        }
        Shapes.require("mask", mask, b, t);
        double[] d = mask.data();
        for (int i = 0; i < d.length; i++) {
            if (d[i] != 0.0 && d[i] != 1.0) {
                throw new IllegalArgumentException("mask: expected 0 or 1 at [" + i / t + ", " + i % t + "], got " + d[i]);
            }
            m[i] = (int) d[i];
        }
        return m;
    }

    private void ensureOpen() {
        if (handle.isClosed()) throw new IllegalStateException("Attention: used after close()");
    }

    /** Frees the engine's device memory (nothing for the reference); closing twice is harmless. */
    @Override
    public void close() {
        handle.close();
    }
}
