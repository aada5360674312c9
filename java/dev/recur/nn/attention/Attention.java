package dev.recur.nn.attention;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendLocks;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Leaks;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.nn.Engines;
import dev.recur.tensor.Shapes;
import dev.recur.tensor.Tensor;

import java.lang.ref.Reference;
import java.util.Arrays;
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
    private final ReentrantLock lock;
    private final Leaks.Handle handle;

    private Attention(AttentionConfig config, Backend backend, AttentionEngine engine, AttentionWeights weights,
                      ReentrantLock lock) {
        this.config = config;
        this.backend = backend;
        this.engine = engine;
        this.weights = weights;
        this.lock = lock;
        this.handle = Leaks.register(this, "An Attention", () -> {
            lock.lock();
            try {
                engine.close();
            } finally {
                lock.unlock();
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
        try {
            engine.setWeights(w);
        } catch (RuntimeException | Error e) {
            engine.close();
            throw e;
        }
        return new Attention(config, backend, engine, w, lock);
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
            this.weights = checked;
            return null;
        });
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
        return locked(() -> engine.forward(dec, enc, m));
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
        return locked(() -> engine.backward(dec, enc, m, dcontext));
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
