package dev.recur.schedule;

import dev.recur.backend.AttentionKernels;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Kernels;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.DeviceAttentionGradients;
import dev.recur.engine.DeviceAttentionOutput;
import dev.recur.engine.GradMode;
import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Attention on any {@link DeviceBackend}, from its GEMMs and the kernels of {@link AttentionKernels}.
 *
 * <p>Forward, for {@code dec [U,B,Hd]}, {@code enc [T,B,He]}:
 * <ul>
 *   <li>dot / scaled: {@code scores[:,b,:] = alpha dec[:,b,:] enc[:,b,:]^T}, one GEMM strided-batched over b
 *       (alpha = 1 or 1/sqrt(He)); general: first {@code q = dec W_a} ({@code [U*B,Hd] x [Hd,He]}), then the
 *       same batched GEMM with q in place of dec;</li>
 *   <li>additive: {@code ekt[b] = W1 enc[:,b,:]^T} ({@code [B,A,T]}, batched over b, so the kernel reads t
 *       contiguously) and {@code dk = dec W2^T}, then {@code attn_scores_additive_fwd}, which applies tanh and v
 *       without storing {@code [U,B,T,A]};</li>
 *   <li>{@code masked_softmax_fwd}, then {@code context[:,b,:] = weights[:,b,:] enc[:,b,:]} batched over b.</li>
 * </ul>
 * The raw scores are a result of the API, so they are materialised whatever the score; fusing the softmax into
 * the score kernel would save one read of {@code [U,B,T]} against {@code U*B*T*A} tanh evaluations, so the two
 * stay separate kernels.
 *
 * <p>Backward of {@code sum(context * dcontext)}: {@code dw = dcontext enc^T} and {@code denc = w^T dcontext}
 * (batched GEMMs), {@code masked_softmax_bwd} to {@code dscores}, then per score: dot/scaled/general
 * {@code dX = alpha ds enc}, {@code denc += alpha ds^T X} (batched GEMMs; general adds
 * {@code ddec = dq W_a^T}, {@code dW_a = dec^T dq}); additive recomputes {@code ek}, {@code dk} and runs
 * {@code attn_scores_additive_bwd} (tanh recomputed, each work item owning 8 consecutive outputs), then
 * {@code dv} by {@code col_sum}, and {@code dW1 = dek^T enc}, {@code denc += dek W1}, {@code dW2 = ddk^T dec},
 * {@code ddec = ddk W2} as four GEMMs over all rows at once.
 *
 * <p>Two levels: {@link #forward(int, int, int, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer)}
 * and {@link #backward(int, int, int, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer)}
 * work on device buffers (for callers that keep their tensors on the device, such as a seq2seq decoder), and
 * the {@link AttentionEngine} methods wrap them with uploads and downloads. Parameters, their gradients and
 * scratch stay allocated until {@link #close()}; scratch is reused across calls.
 */
public final class AttentionSchedule implements AttentionEngine {
    private final DeviceBackend be;
    private final AttentionConfig cfg;
    private final int hd, he, a;
    private final Map<String, DeviceBuffer> params = new LinkedHashMap<>();
    private final Map<String, DeviceBuffer> grads = new LinkedHashMap<>();
    private final Workspace ws;
    private boolean closed;

    public AttentionSchedule(DeviceBackend backend, AttentionConfig config) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.be = backend;
        this.cfg = config;
        this.hd = config.decoderSize();
        this.he = config.encoderSize();
        this.a = config.attentionSize();
        this.ws = new Workspace(backend);
        try {
            for (Map.Entry<String, int[]> e : config.weightShapes().entrySet()) {
                long n = elements(e.getValue());
                params.put(e.getKey(), backend.allocate(DeviceBuffer.Type.F32, n));
                grads.put(e.getKey(), backend.allocate(DeviceBuffer.Type.F32, n));
            }
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    private static long elements(int[] shape) {
        long n = 1;
        for (int s : shape) n *= s;
        return n;
    }

    public AttentionConfig config() {
        return cfg;
    }

    @Override
    public void setWeights(AttentionWeights w) {
        ensureOpen();
        for (Map.Entry<String, DeviceBuffer> e : params.entrySet()) {
            float[] f = w.get(e.getKey()).toFloatArray();
            be.upload(f, 0, e.getValue(), 0, f.length);
        }
    }

    /** Its parameter buffers, read in place by every call (see {@link AttentionEngine#deviceWeights()}). */
    @Override
    public Map<String, DeviceBuffer> deviceWeights() {
        ensureOpen();
        return java.util.Collections.unmodifiableMap(params);
    }

    /** The device buffer of a parameter's gradient, written by the last {@link #backward} call. */
    public DeviceBuffer gradient(String name) {
        ensureOpen();
        DeviceBuffer b = grads.get(name);
        if (b == null) throw new IllegalArgumentException("name: expected one of " + grads.keySet() + ", got '" + name + "'");
        return b;
    }

    // ---------------------------------------------------------------- device level

    /**
     * Forward on device buffers (F32 unless noted; sizes in elements, at least):
     * {@code dec [U,B,Hd]}, {@code enc [T,B,He]}, {@code mask [B,T]} I32 → {@code scores, weights [U,B,T]},
     * {@code context [U,B,He]}.
     */
    public void forward(int u, int b, int t, DeviceBuffer dec, DeviceBuffer enc, DeviceBuffer mask,
                        DeviceBuffer scores, DeviceBuffer weights, DeviceBuffer context) {
        ensureOpen();
        checkDims(u, b, t);
        need("dec", dec, DeviceBuffer.Type.F32, (long) u * b * hd);
        need("enc", enc, DeviceBuffer.Type.F32, (long) t * b * he);
        need("mask", mask, DeviceBuffer.Type.I32, (long) b * t);
        need("scores", scores, DeviceBuffer.Type.F32, (long) u * b * t);
        need("weights", weights, DeviceBuffer.Type.F32, (long) u * b * t);
        need("context", context, DeviceBuffer.Type.F32, (long) u * b * he);
        distinctOutputs(new String[] {"scores", "weights", "context"}, new DeviceBuffer[] {scores, weights, context},
                dec, enc, mask);
        switch (cfg.score()) {
            case DOT, SCALED -> dotScores(u, b, t, alpha(), dec, enc, scores);
            case GENERAL -> {
                DeviceBuffer q = ws.f32("q", (long) u * b * he);
                be.gemm(false, false, u * b, he, hd, 1f, dec, 0, hd, params.get("W_a"), 0, he, 0f, q, 0, he);
                dotScores(u, b, t, 1f, q, enc, scores);
            }
            case ADDITIVE -> {
                DeviceBuffer ekt = ws.f32("ekt", (long) t * b * a), dk = ws.f32("dk", (long) u * b * a);
                // ekt [B, A, T]: per b, W1 (A x He) · enc[:,b,:]^T, so the kernel reads consecutive t contiguously.
                be.gemmStridedBatched(false, true, a, t, he, 1f, params.get("W1"), 0, he, 0, enc, 0, b * he, he,
                        0f, ekt, 0, t, (long) a * t, b);
                be.gemm(false, true, u * b, a, hd, 1f, dec, 0, hd, params.get("W2"), 0, hd, 0f, dk, 0, a);
                be.launch(AttentionKernels.ATTN_SCORES_ADDITIVE_FWD, new long[] {chunks(t), b, u}, u, b, t, a, ekt, dk,
                        params.get("v"), scores);
            }
        }
        be.launch(AttentionKernels.MASKED_SOFTMAX_FWD, new long[] {b, u}, u, b, t, mask, scores, weights);
        // context[:,b,:] = weights[:,b,:] (U x T) · enc[:,b,:] (T x He)
        be.gemmStridedBatched(false, false, u, he, t, 1f, weights, 0, b * t, t, enc, 0, b * he, he,
                0f, context, 0, b * he, he, b);
    }

    /**
     * Backward on device buffers: from the forward's {@code weights [U,B,T]} and {@code dcontext [U,B,He]},
     * writes {@code dscores [U,B,T]}, {@code ddec [U,B,Hd]}, {@code denc [T,B,He]} and every parameter's
     * gradient ({@link #gradient}); the other arguments as in {@link #forward}.
     */
    public void backward(int u, int b, int t, DeviceBuffer dec, DeviceBuffer enc, DeviceBuffer mask,
                         DeviceBuffer weights, DeviceBuffer dcontext,
                         DeviceBuffer dscores, DeviceBuffer ddec, DeviceBuffer denc) {
        ensureOpen();
        checkDims(u, b, t);
        need("dec", dec, DeviceBuffer.Type.F32, (long) u * b * hd);
        need("enc", enc, DeviceBuffer.Type.F32, (long) t * b * he);
        need("mask", mask, DeviceBuffer.Type.I32, (long) b * t);
        need("weights", weights, DeviceBuffer.Type.F32, (long) u * b * t);
        need("dcontext", dcontext, DeviceBuffer.Type.F32, (long) u * b * he);
        need("dscores", dscores, DeviceBuffer.Type.F32, (long) u * b * t);
        need("ddec", ddec, DeviceBuffer.Type.F32, (long) u * b * hd);
        need("denc", denc, DeviceBuffer.Type.F32, (long) t * b * he);
        distinctOutputs(new String[] {"dscores", "ddec", "denc"}, new DeviceBuffer[] {dscores, ddec, denc},
                dec, enc, mask, weights, dcontext);

        DeviceBuffer dw = ws.f32("dw", (long) u * b * t);
        dotScores(u, b, t, 1f, dcontext, enc, dw);
        // denc[:,b,:] = weights[:,b,:]^T (T x U) · dcontext[:,b,:] (U x He)
        be.gemmStridedBatched(true, false, t, he, u, 1f, weights, 0, b * t, t, dcontext, 0, b * he, he,
                0f, denc, 0, b * he, he, b);
        be.launch(AttentionKernels.MASKED_SOFTMAX_BWD, new long[] {b, u}, u, b, t, mask, weights, dw, dscores);

        switch (cfg.score()) {
            case DOT, SCALED -> dotScoresBackward(u, b, t, alpha(), dscores, enc, dec, ddec, denc);
            case GENERAL -> {
                DeviceBuffer wa = params.get("W_a");
                DeviceBuffer q = ws.f32("q", (long) u * b * he), dq = ws.f32("dq", (long) u * b * he);
                be.gemm(false, false, u * b, he, hd, 1f, dec, 0, hd, wa, 0, he, 0f, q, 0, he);
                dotScoresBackward(u, b, t, 1f, dscores, enc, q, dq, denc);
                be.gemm(false, true, u * b, hd, he, 1f, dq, 0, he, wa, 0, he, 0f, ddec, 0, hd);
                be.gemm(true, false, hd, he, u * b, 1f, dec, 0, hd, dq, 0, he, 0f, grads.get("W_a"), 0, he);
            }
            case ADDITIVE -> {
                DeviceBuffer ek = ws.f32("ek", (long) t * b * a), dk = ws.f32("dk", (long) u * b * a);
                DeviceBuffer dek = ws.f32("dek", (long) t * b * a), ddk = ws.f32("ddk", (long) u * b * a);
                DeviceBuffer dvpart = ws.f32("dvpart", (long) u * b * a);
                DeviceBuffer w1 = params.get("W1"), w2 = params.get("W2");
                projections(u, b, t, dec, enc, ek, dk);
                be.launch(AttentionKernels.ATTN_SCORES_ADDITIVE_BWD, new long[] {chunks(a), b, u + t}, u, b, t, a, ek, dk,
                        params.get("v"), dscores, ddk, dek, dvpart);
                be.launch(Kernels.COL_SUM, new long[] {a}, u * b, a, dvpart, grads.get("v"), 0f);
                be.gemm(true, false, a, he, t * b, 1f, dek, 0, a, enc, 0, he, 0f, grads.get("W1"), 0, he);
                be.gemm(false, false, t * b, he, a, 1f, dek, 0, a, w1, 0, he, 1f, denc, 0, he);
                be.gemm(true, false, a, hd, u * b, 1f, ddk, 0, a, dec, 0, hd, 0f, grads.get("W2"), 0, hd);
                be.gemm(false, false, u * b, hd, a, 1f, ddk, 0, a, w2, 0, hd, 0f, ddec, 0, hd);
            }
        }
    }

    private static long chunks(int n) {
        return (n + AttentionKernels.ADDITIVE_CHUNK - 1) / AttentionKernels.ADDITIVE_CHUNK;
    }

    private float alpha() {
        return cfg.score() == AttentionScore.SCALED ? (float) (1.0 / Math.sqrt(he)) : 1f;
    }

    /** {@code out[u,b,t] = alpha * x[u,b,:] · enc[t,b,:]}: per b, {@code x[:,b,:] (U x He) · enc[:,b,:]^T}. */
    private void dotScores(int u, int b, int t, float alpha, DeviceBuffer x, DeviceBuffer enc, DeviceBuffer out) {
        be.gemmStridedBatched(false, true, u, t, he, alpha, x, 0, b * he, he, enc, 0, b * he, he,
                0f, out, 0, b * t, t, b);
    }

    /** Backward of {@link #dotScores}: {@code dx = alpha ds enc} (overwritten), {@code denc += alpha ds^T x}. */
    private void dotScoresBackward(int u, int b, int t, float alpha, DeviceBuffer ds, DeviceBuffer enc, DeviceBuffer x,
                                   DeviceBuffer dx, DeviceBuffer denc) {
        be.gemmStridedBatched(false, false, u, he, t, alpha, ds, 0, b * t, t, enc, 0, b * he, he,
                0f, dx, 0, b * he, he, b);
        be.gemmStridedBatched(true, false, t, he, u, alpha, ds, 0, b * t, t, x, 0, b * he, he,
                1f, denc, 0, b * he, he, b);
    }

    /** {@code ek = enc W1^T [T*B, A]}, {@code dk = dec W2^T [U*B, A]}. */
    private void projections(int u, int b, int t, DeviceBuffer dec, DeviceBuffer enc, DeviceBuffer ek, DeviceBuffer dk) {
        be.gemm(false, true, t * b, a, he, 1f, enc, 0, he, params.get("W1"), 0, he, 0f, ek, 0, a);
        be.gemm(false, true, u * b, a, hd, 1f, dec, 0, hd, params.get("W2"), 0, hd, 0f, dk, 0, a);
    }

    private void checkDims(int u, int b, int t) {
        if (u <= 0) throw new IllegalArgumentException("U: expected > 0, got " + u);
        if (b <= 0) throw new IllegalArgumentException("B: expected > 0, got " + b);
        if (t <= 0) throw new IllegalArgumentException("T: expected > 0, got " + t);
        long widest = Math.max(Math.max(hd, he), Math.max(a, t));
        long rows = Math.max(u, t) * (long) b;
        if (rows * widest > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("U, B, T: a tensor of " + rows * widest + " elements exceeds the kernels' "
                    + "int32 indexing (" + Integer.MAX_VALUE + "); got U=" + u + ", B=" + b + ", T=" + t);
        }
    }

    /** Each output is its own buffer: an output sharing a buffer with an input or another output would be overwritten while read. */
    private static void distinctOutputs(String[] names, DeviceBuffer[] outputs, DeviceBuffer... inputs) {
        for (int i = 0; i < outputs.length; i++) {
            for (int j = 0; j < i; j++) {
                if (outputs[i] == outputs[j]) {
                    throw new IllegalArgumentException(names[i] + ": expected a buffer of its own, got the same buffer as " + names[j]);
                }
            }
            for (DeviceBuffer in : inputs) {
                if (outputs[i] == in) throw new IllegalArgumentException(names[i] + ": expected a buffer of its own, got an input buffer");
            }
        }
    }

    private static void need(String name, DeviceBuffer buf, DeviceBuffer.Type type, long elements) {
        if (buf == null) throw new IllegalArgumentException(name + ": must not be null");
        if (buf.type() != type) throw new IllegalArgumentException(name + ": expected a " + type + " buffer, got " + buf.type());
        if (buf.size() < elements) {
            throw new IllegalArgumentException(name + ": expected at least " + elements + " elements, got a buffer of " + buf.size());
        }
    }

    // ---------------------------------------------------------------- host level

    private DeviceBuffer upload(String slot, Tensor x) {
        float[] f = x.toFloatArray();
        DeviceBuffer d = ws.f32(slot, f.length);
        be.upload(f, 0, d, 0, f.length);
        return d;
    }

    private DeviceBuffer uploadMask(int[] mask) {
        DeviceBuffer d = ws.get("in.mask", DeviceBuffer.Type.I32, mask.length);
        be.upload(mask, 0, d, 0, mask.length);
        return d;
    }

    private Tensor download(DeviceBuffer src, int... shape) {
        Tensor out = Tensor.zeros(shape);
        float[] f = new float[out.size()];
        be.download(src, 0, f, 0, f.length);
        double[] d = out.data();
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return out;
    }

    @Override
    public AttentionOutput forward(Tensor dec, Tensor enc, int[] mask) {
        ensureOpen();
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0);
        checkDims(u, b, t);
        DeviceBuffer d = upload("in.dec", dec), e = upload("in.enc", enc), m = uploadMask(mask);
        DeviceBuffer s = ws.f32("out.scores", (long) u * b * t), w = ws.f32("out.weights", (long) u * b * t);
        DeviceBuffer c = ws.f32("out.context", (long) u * b * he);
        forward(u, b, t, d, e, m, s, w, c);
        return new AttentionOutput(download(s, u, b, t), download(w, u, b, t), download(c, u, b, he));
    }

    @Override
    public AttentionGradients backward(Tensor dec, Tensor enc, int[] mask, Tensor dcontext) {
        ensureOpen();
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0);
        checkDims(u, b, t);
        DeviceBuffer d = upload("in.dec", dec), e = upload("in.enc", enc), m = uploadMask(mask);
        DeviceBuffer dc = upload("in.dcontext", dcontext);
        DeviceBuffer s = ws.f32("out.scores", (long) u * b * t), w = ws.f32("out.weights", (long) u * b * t);
        DeviceBuffer c = ws.f32("out.context", (long) u * b * he);
        forward(u, b, t, d, e, m, s, w, c);
        DeviceBuffer ds = ws.f32("out.dscores", (long) u * b * t), dd = ws.f32("out.ddec", (long) u * b * hd);
        DeviceBuffer de = ws.f32("out.denc", (long) t * b * he);
        backward(u, b, t, d, e, m, w, dc, ds, dd, de);
        Map<String, Tensor> dweights = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> en : cfg.weightShapes().entrySet()) {
            dweights.put(en.getKey(), download(grads.get(en.getKey()), en.getValue()));
        }
        return new AttentionGradients(download(ds, u, b, t), download(dd, u, b, hd), download(de, t, b, he), dweights);
    }

    // ---------------------------------------------------------------- device tensors

    @Override
    public boolean runsOnDevice() {
        return true;
    }

    /** {@code t}'s buffer where it starts one (read in place), else a device copy into workspace slot {@code slot}. */
    private DeviceBuffer whole(String slot, DeviceTensor t) {
        if (t.offset() == 0) return t.buffer();
        DeviceBuffer d = ws.get(slot, t.type(), t.size());
        be.copy(t.buffer(), t.offset(), d, 0, t.size());
        return d;
    }

    private DeviceBuffer maskOrAll(DeviceTensor mask, int b, int t) {
        if (mask != null) return whole("in.mask", mask);
        DeviceBuffer m = ws.get("in.mask", DeviceBuffer.Type.I32, (long) b * t);
        be.fill(m, 0, (long) b * t, 1);
        return m;
    }

    /** Forward on device tensors into new tensors the output owns; no host traffic. */
    @Override
    public DeviceAttentionOutput forward(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask) {
        ensureOpen();
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0);
        checkDims(u, b, t);
        List<DeviceTensor> made = new ArrayList<>();
        try {
            DeviceTensor s = alloc(made, u, b, t), w = alloc(made, u, b, t), c = alloc(made, u, b, he);
            forward(u, b, t, whole("in.dec", dec), whole("in.enc", enc), maskOrAll(mask, b, t), s.buffer(), w.buffer(),
                    c.buffer());
            return new DeviceAttentionOutput(s, w, c);
        } catch (RuntimeException | Error e) {
            for (DeviceTensor x : made) x.close();
            throw e;
        }
    }

    /**
     * Backward on device tensors (the forward recomputed into the workspace); the parameter gradients are copied
     * (SET) or added (ADD) into {@code grads}. No host traffic.
     */
    @Override
    public DeviceAttentionGradients backward(DeviceTensor dec, DeviceTensor enc, DeviceTensor mask, DeviceTensor dcontext,
                                             Map<String, DeviceTensor> gradsOut, GradMode mode) {
        ensureOpen();
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0);
        checkDims(u, b, t);
        List<DeviceTensor> made = new ArrayList<>();
        try {
            DeviceBuffer d = whole("in.dec", dec), e = whole("in.enc", enc), m = maskOrAll(mask, b, t);
            DeviceBuffer dc = whole("in.dcontext", dcontext);
            DeviceBuffer s = ws.f32("out.scores", (long) u * b * t), w = ws.f32("out.weights", (long) u * b * t);
            DeviceBuffer c = ws.f32("out.context", (long) u * b * he);
            forward(u, b, t, d, e, m, s, w, c);
            DeviceTensor ds = alloc(made, u, b, t), dd = alloc(made, u, b, hd), de = alloc(made, t, b, he);
            backward(u, b, t, d, e, m, w, dc, ds.buffer(), dd.buffer(), de.buffer());
            if (gradsOut != null) {
                for (Map.Entry<String, DeviceBuffer> g : grads.entrySet()) {
                    DeviceTensor dst = gradsOut.get(g.getKey());
                    long n = dst.size();
                    if (mode == GradMode.ADD) {
                        be.launch(Kernels.TRANSPOSE, new long[] {n, 1}, 1, 1, (int) n, g.getValue(), 0, 1, dst.buffer(),
                                (int) dst.offset(), 1, 1f);
                    } else {
                        be.copy(g.getValue(), 0, dst.buffer(), dst.offset(), n);
                    }
                }
            }
            return new DeviceAttentionGradients(ds, dd, de);
        } catch (RuntimeException | Error e) {
            for (DeviceTensor x : made) x.close();
            throw e;
        }
    }

    private DeviceTensor alloc(List<DeviceTensor> made, int... shape) {
        DeviceTensor t = DeviceTensor.allocate(be, DeviceBuffer.Type.F32, shape);
        made.add(t);
        return t;
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("AttentionSchedule: used after close()");
    }

    /** Frees parameters, gradients and scratch; closing twice is harmless. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        RuntimeException first = null;
        for (DeviceBuffer buf : params.values()) first = closeQuietly(buf, first);
        for (DeviceBuffer buf : grads.values()) first = closeQuietly(buf, first);
        params.clear();
        grads.clear();
        try {
            ws.close();
        } catch (RuntimeException e) {
            if (first == null) first = e;
        }
        if (first != null) throw first;
    }

    private static RuntimeException closeQuietly(DeviceBuffer b, RuntimeException first) {
        try {
            b.close();
        } catch (RuntimeException e) {
            return first == null ? e : first;
        }
        return first;
    }
}
