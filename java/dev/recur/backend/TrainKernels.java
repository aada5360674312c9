package dev.recur.backend;

import java.util.List;

/**
 * The catalogue of the training and decoding kernels (issue 15: a training step moves only the batch in and the
 * loss out), the counterpart of {@link Kernels} for everything around the networks: optimizers over a flat
 * parameter buffer, global-norm clipping, the fused softmax cross-entropy and mean squared error, embeddings, argmax /
 * top-k, beam search, bias plus activation, a strided copy, and the masked mean / max pooling of many-to-one heads.
 * Each is written once in {@code kernels/common/<family>.h} (the equations open
 * the file), its entry point in {@code kernels/entry/<family>.h} (included by {@code kernels/opencl/<family>.cl} and {@code kernels/cuda/<family>.cu}),
 * implemented in Java for the {@code cpu} backend in {@code CpuTrainKernels}, stated in float64 in
 * {@link dev.recur.backend.reference.ReferenceTrainKernels} (the oracle the tests hold every backend to, itself
 * checked against PyTorch by {@code tests/fixtures/make_train_fixtures.py}), tested in
 * {@code tests/java/dev/recur/device/<Name>Test} and benchmarked in {@code bench/.../<Name>Bench}.
 *
 * <p>The static methods here launch a kernel after checking every argument (buffer types, that every range fits
 * its buffer, hyperparameters in range), throwing {@link IllegalArgumentException} naming the kernel and the
 * argument before anything is issued; prefer them to {@link DeviceBackend#launch} with the raw lists below.
 * An empty range launches nothing. Sums run in a fixed order on every backend (no atomics), so results are
 * bit-identical from run to run on one backend.
 *
 * <p><b>Parameter groups are ranges.</b> The optimizers update {@code [off, off+n)} of a flat parameter buffer: a group
 * (its own learning rate, no weight decay for biases, gains and embeddings) is one launch over its range, and a frozen
 * range is not launched. Chosen over a per-element flag buffer because a flag would add 4 bytes to Adam's 28 per
 * parameter and step, and because ranges carry every per-group hyperparameter of PyTorch's parameter groups, not just
 * two flags; a weight space laid out group by group needs one launch per group.
 *
 * <p><b>No read-back.</b> A training step is: zero the gradients ({@link DeviceBackend#fill}), forward and backward,
 * {@link #softmaxXentFwdBwd} and {@link #softmaxXentMean} (the mean loss stays in a device scalar), {@link #gradNorm}
 * (the clipping scale stays in a device scalar), one optimizer launch per group reading that scale; the host
 * downloads 4 bytes of loss when it wants them.
 *
 * <p><b>Shapes a GPU will not like yet</b> (measured only on PoCL and the cpu backend; no GPU has run these). Like
 * every kernel of the contract, work items are independent, so the row kernels ({@code softmax_xent_fwd_bwd},
 * {@code argmax_rows}, {@code topk_rows}) run one work item per row, looping over V: N = 2048 rows is 2048 threads on a
 * GPU, and neighbouring threads read addresses V apart. {@code softmax_xent_fwd_bwd} also counts the non-padded
 * targets in every work item (O(N) per row, cached reads). {@code embedding_bwd_index}, {@code grad_clip_scale} and
 * {@code softmax_xent_mean} are single work items (O(N + V), O(P) and O(N) serial steps), and {@code mse_fwd_bwd}'s
 * work item 0 sums all N squares. The pooling kernels run one work item per (column, sequence), looping over the steps:
 * neighbouring items read neighbouring columns. A work-group-per-row
 * variant with a fixed-order tree reduction would be the optional-kernel route ({@link Kernels#OPTIONAL}) once a GPU
 * can measure it.
 *
 * <h2>Kernels</h2>
 * Grids {@code {x, y}} with x fastest; booleans are ints (0/1); {@code scale} is a device scalar (an F32 buffer
 * whose element 0 is read).
 * <pre>
 * adam_step         grid {n}: off,n,lr,beta1,beta2,eps,wd,decoupled,bc1,bc2, scale, p, g, m, v
 *                   Adam (decoupled = 0: gs = g*scale[0] + wd*p) or AdamW (1: p *= 1 - lr*wd, gs = g*scale[0]) on
 *                   p[off..off+n): m = b1 m + (1-b1) gs, v = b2 v + (1-b2) gs^2,
 *                   p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps); bc1 = 1-b1^t, bc2 = 1-b2^t for step t (from 1),
 *                   computed by {@link #adamStep} in float64 (one power per launch, not one per work item)
 * sgd_step          grid {n}: off,n,first,lr,momentum,dampening,wd,nesterov, scale, p, g, buf
 *                   gs = g*scale[0] + wd*p; momentum != 0: buf = first ? gs : mu buf + (1-dampening) gs,
 *                   gs = nesterov ? gs + mu buf : buf; p -= lr gs
 * grad_norm_partial grid {P}: off,n,P, x, poff, parts     parts[poff+q] = sum_k x[off+q+kP]^2 (k ascending)
 * grad_clip_scale   grid {1}: nparts, parts, maxNorm, norm, scale
 *                   norm[0] = sqrt(sum of parts[0..nparts) in order), scale[0] = min(1, maxNorm/(norm+1e-6))
 * softmax_xent_fwd_bwd grid {N}: N,V,pad, logits, targets, loss, dlogits
 *                   per row with t = targets[r] != pad: loss = logsumexp - x_t, dlogits = (softmax - onehot)/count,
 *                   count = non-padded rows; padded rows 0; a target outside [0,V) gives NaN
 * softmax_xent_mean grid {1}: N,pad, targets, loss, out   out[0] = mean loss over the non-padded rows (0 if none)
 * mse_fwd_bwd       grid {N}: N, pred, target, dpred, out  dpred = 2 (pred - target)/N; item 0: out[0] = sum of
 *                   (pred - target)^2 in index order / N   (MeanSquaredError; dpred must not be pred)
 * embedding_fwd     grid {E,N}: N,E,V, ids, weight, out     out[n,:] = weight[ids[n],:] (0 for an id outside [0,V))
 * embedding_bwd_index grid {1}: N,V,pad, ids, start, order  stable counting sort: positions of id v (not pad) are
 *                   order[start[v]..start[v+1]) in increasing n; start [V+1], order [N] (I32)
 * embedding_bwd     grid {E,V}: V,E, start, order, dout, dweight, beta
 *                   dweight[v,:] = beta*dweight[v,:] + sum over those positions of dout[n,:] in position order
 * argmax_rows       grid {N}: N,V, x, idx                  first index of each row's maximum (NaN passed over)
 * topk_rows         grid {N}: N,V,K, x, vals, idx          the K largest per row, largest first, ties to the lower
 *                   index; NaN passed over (slots beyond the row's numbers: NaN, -1)
 * sample_rows       grid {N}: N,V,T,seedLo,seedHi,step,wantLogp,cutOff,cutStride, x, cut, idx, logp
 *                   idx[r] = the inverse-CDF draw from softmax(x[r,:]/T) at u = {@link #sampleUniform}(seed, step, r)
 *                   (counter-based: no state, any launch shape), over the tokens with x >= cut[cutOff + r cutStride]
 *                   when cutStride > 0 (top-k); wantLogp: logp[r] = log softmax(x[r,:])[idx[r]]
 * scheduled_feed    grid {N}: N,threshold,seedLo,seedHi,step, target,tgtOff, pred, next,outOff   scheduled sampling:
 *                   next[outOff+r] = u < tf ? target[tgtOff+r] : pred[r], u = {@link #sampleUniform}(seed, step, r),
 *                   compared as its 24 bits against threshold = ceil(tf 2^24) (exact; all I32)
 * source_mask       grid {B}: T,B,pad, ids, lengths, mask  from time-major ids [T,B]: lengths[b] = 1 + the last t
 *                   with ids[t*B+b] != pad (0 if none), mask[b*T+t] = t < lengths[b] ? 1 : 0 (all I32)
 * bias_act_fwd      grid {F,N}: N,F,act, x, bias, y        y = act(x + bias[f]); act 0 identity 1 tanh 2 relu 3 sigmoid
 * bias_act_bwd      grid {F,N}: N,F,act, y, dy, dx         dx = dy * act'(y), from the output y
 * copy_strided      grid {cols,rows}: rows,cols, src,soff,sld, dst,doff,dld   dst[doff+r dld+c] = src[soff+r sld+c]
 * beam_candidates   grid {N}: N,K,V,step,end, logits, tok, score, cand   beam search, N = B*K rows: cand[r,t] =
 *                   s + log_softmax(logits[r])[t], s = score[r] (step 0: 0 for r%K == 0, else -inf); a finished row
 *                   (step > 0 and tok[r] == end) offers only t = end at s, every other t -inf
 * beam_update       grid {N}: N,K,V,step,end, vals, idx, parents, tok, score, histTok, histPar   from topk_rows over
 *                   [B, K*V]: parents[r] = b*K + idx/V, tok[r] = idx%V, score[r] = vals[r] (dead when no live
 *                   candidate: b*K, end, -inf); histTok/histPar[step*N + r] = tok[r]/parents[r]
 * beam_backtrace    grid {B}: B,K,S,end,alpha, score, histTok, histPar, out, at, scores   per item the best row
 *                   (finished first, then score/length^alpha, ties to the lower row), walked back over S steps:
 *                   out[b,s] = its tokens, at[b,s] = s*N + the step-s row that gave them, scores[b] = (lp, norm)
 * repeat_rows_i32   grid {C, M*R}: M,C,R, src, dst         dst[q,c] = src[q/R, c] (I32)
 * pool_mean_fwd     grid {W,B}: T,B,W, y,yoff, lengths, out           over time-major y [T,B,W] and lengths [B]
 *                   (clipped to [0,T]): out[b,j] = sum_{t<len} y[t,b,j] (t ascending) / len (0 if len = 0)
 * pool_mean_bwd     grid {W,B}: T,B,W, lengths, dout, dy,dyoff        dy[t,b,j] = t < len ? dout[b,j]/len : 0
 * pool_max_fwd      grid {W,B}: T,B,W, y,yoff, lengths, out, idx      out[b,j] = max_{t<len} y[t,b,j], idx[b,j] =
 *                   the first t holding it (moves only on a strictly greater value); len = 0: 0 and -1
 * pool_max_bwd      grid {W,B}: T,B,W, idx, dout, dy,dyoff            dy[t,b,j] = t == idx[b,j] ? dout[b,j] : 0
 * </pre>
 */
public final class TrainKernels {
    private TrainKernels() {}

    public static final String ADAM_STEP = "adam_step";
    public static final String SGD_STEP = "sgd_step";
    public static final String GRAD_NORM_PARTIAL = "grad_norm_partial";
    public static final String GRAD_CLIP_SCALE = "grad_clip_scale";
    public static final String SOFTMAX_XENT_FWD_BWD = "softmax_xent_fwd_bwd";
    public static final String SOFTMAX_XENT_MEAN = "softmax_xent_mean";
    public static final String EMBEDDING_FWD = "embedding_fwd";
    public static final String EMBEDDING_BWD_INDEX = "embedding_bwd_index";
    public static final String EMBEDDING_BWD = "embedding_bwd";
    public static final String ARGMAX_ROWS = "argmax_rows";
    public static final String TOPK_ROWS = "topk_rows";
    public static final String SOURCE_MASK = "source_mask";
    public static final String SAMPLE_ROWS = "sample_rows";
    public static final String SCHEDULED_FEED = "scheduled_feed";
    public static final String BIAS_ACT_FWD = "bias_act_fwd";
    public static final String BIAS_ACT_BWD = "bias_act_bwd";
    public static final String COPY_STRIDED = "copy_strided";
    public static final String BEAM_CANDIDATES = "beam_candidates";
    public static final String BEAM_UPDATE = "beam_update";
    public static final String BEAM_BACKTRACE = "beam_backtrace";
    public static final String REPEAT_ROWS_I32 = "repeat_rows_i32";
    public static final String MSE_FWD_BWD = "mse_fwd_bwd";
    public static final String POOL_MEAN_FWD = "pool_mean_fwd";
    public static final String POOL_MEAN_BWD = "pool_mean_bwd";
    public static final String POOL_MAX_FWD = "pool_max_fwd";
    public static final String POOL_MAX_BWD = "pool_max_bwd";

    /** Every kernel of this catalogue; every device backend runs all of them. */
    public static final List<String> ALL = List.of(ADAM_STEP, SGD_STEP, GRAD_NORM_PARTIAL, GRAD_CLIP_SCALE,
            SOFTMAX_XENT_FWD_BWD, SOFTMAX_XENT_MEAN, EMBEDDING_FWD, EMBEDDING_BWD_INDEX, EMBEDDING_BWD, ARGMAX_ROWS,
            TOPK_ROWS, SOURCE_MASK, BIAS_ACT_FWD, BIAS_ACT_BWD, COPY_STRIDED, BEAM_CANDIDATES, BEAM_UPDATE,
            BEAM_BACKTRACE, REPEAT_ROWS_I32, MSE_FWD_BWD, POOL_MEAN_FWD, POOL_MEAN_BWD, POOL_MAX_FWD, POOL_MAX_BWD,
            SAMPLE_ROWS, SCHEDULED_FEED);

    /**
     * The number of partial sums {@link #gradNorm} uses for {@code n} elements: one per 4096 elements, at least 1,
     * at most 1024 (enough work items for a GPU, few enough for the one item that adds them). A function of
     * {@code n} alone, so the summation order never depends on the device.
     */
    public static int normParts(long n) {
        return (int) Math.max(1, Math.min(1024, (n + 4095) / 4096));
    }

    /** Activations of {@code bias_act_fwd} / {@code bias_act_bwd}, by their {@code act} code. */
    public enum Act {
        IDENTITY, TANH, RELU, SIGMOID;

        public int code() {
            return ordinal();
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Optimizers and clipping

    /**
     * {@code adam_step} over {@code p[off, off+n)} with its moments {@code m}, {@code v} at the same indexes and the
     * gradient {@code g} times {@code scale[0]}; {@code decoupled} selects AdamW's weight decay. {@code step} is the
     * 1-based count of this update; the bias corrections {@code 1 - beta^step} are computed from it here, in float64,
     * and passed to the kernel.
     */
    public static void adamStep(DeviceBackend be, DeviceBuffer p, DeviceBuffer g, DeviceBuffer m, DeviceBuffer v,
                                DeviceBuffer scale, int off, int n, int step, float lr, float beta1, float beta2,
                                float eps, float wd, boolean decoupled) {
        String k = ADAM_STEP;
        range(k, off, n);
        f32(k, "p", p, (long) off + n);
        f32(k, "g", g, (long) off + n);
        f32(k, "m", m, (long) off + n);
        f32(k, "v", v, (long) off + n);
        f32(k, "scale", scale, 1);
        if (step < 1) throw bad(k, "step", "must be >= 1 (the first update is step 1)", step);
        nonNegative(k, "lr", lr);
        unit(k, "beta1", beta1);
        unit(k, "beta2", beta2);
        if (!(eps > 0) || Float.isInfinite(eps)) throw bad(k, "eps", "must be a positive number", eps);
        nonNegative(k, "wd", wd);
        if (n == 0) return;
        float bc1 = (float) (1 - Math.pow(beta1, step)), bc2 = (float) (1 - Math.pow(beta2, step));
        be.launch(k, new long[] {n}, off, n, lr, beta1, beta2, eps, wd, decoupled ? 1 : 0, bc1, bc2, scale, p, g, m, v);
    }

    /**
     * {@code sgd_step} over {@code p[off, off+n)} with its momentum buffer {@code buf} at the same indexes (unused when
     * {@code momentum == 0}); {@code first} marks the first step, which copies the gradient into the buffer.
     */
    public static void sgdStep(DeviceBackend be, DeviceBuffer p, DeviceBuffer g, DeviceBuffer buf, DeviceBuffer scale,
                               int off, int n, boolean first, float lr, float momentum, float dampening, float wd,
                               boolean nesterov) {
        String k = SGD_STEP;
        range(k, off, n);
        f32(k, "p", p, (long) off + n);
        f32(k, "g", g, (long) off + n);
        f32(k, "buf", buf, momentum == 0f ? 1 : (long) off + n);
        f32(k, "scale", scale, 1);
        nonNegative(k, "lr", lr);
        nonNegative(k, "momentum", momentum);
        nonNegative(k, "dampening", dampening);
        nonNegative(k, "wd", wd);
        if (nesterov && (momentum == 0f || dampening != 0f)) {
            throw bad(k, "nesterov", "needs momentum > 0 and dampening 0 (as PyTorch)",
                    "momentum " + momentum + ", dampening " + dampening);
        }
        if (n == 0) return;
        be.launch(k, new long[] {n}, off, n, first ? 1 : 0, lr, momentum, dampening, wd, nesterov ? 1 : 0, scale, p, g,
                buf);
    }

    /**
     * {@code grad_norm_partial}: the sums of squares of {@code x[off, off+n)} into {@code parts[poff, poff+P)}, with
     * {@code P = normParts(n)} strided partial sums. Several ranges (or buffers) may write consecutive slices of one
     * {@code parts} buffer before one {@link #gradClipScale} over all of them.
     *
     * @return P, the number of slots written
     */
    public static int gradNormPartial(DeviceBackend be, DeviceBuffer x, int off, int n, DeviceBuffer parts, int poff) {
        String k = GRAD_NORM_PARTIAL;
        range(k, off, n);
        if (poff < 0) throw bad(k, "poff", "must be >= 0", poff);
        int P = normParts(n);
        f32(k, "x", x, (long) off + n);
        f32(k, "parts", parts, (long) poff + P);
        be.launch(k, new long[] {P}, off, n, P, x, poff, parts);
        return P;
    }

    /**
     * {@code grad_clip_scale}: {@code norm[0]} = the global L2 norm from {@code parts[0, nparts)} and {@code scale[0]}
     * = PyTorch's {@code clip_grad_norm_} coefficient {@code min(1, maxNorm/(norm+1e-6))}, both left on the device.
     */
    public static void gradClipScale(DeviceBackend be, DeviceBuffer parts, int nparts, float maxNorm, DeviceBuffer norm,
                                     DeviceBuffer scale) {
        String k = GRAD_CLIP_SCALE;
        if (nparts < 1) throw bad(k, "nparts", "must be >= 1", nparts);
        f32(k, "parts", parts, nparts);
        if (!(maxNorm > 0)) throw bad(k, "maxNorm", "must be > 0 (infinity: never clip)", maxNorm);
        f32(k, "norm", norm, 1);
        f32(k, "scale", scale, 1);
        be.launch(k, new long[] {1}, nparts, parts, maxNorm, norm, scale);
    }

    /**
     * The global norm of {@code grad[0, n)} and its clipping scale in two launches ({@link #gradNormPartial} then
     * {@link #gradClipScale}); {@code parts} needs {@link #normParts}(n) elements. Nothing is read back.
     */
    public static void gradNorm(DeviceBackend be, DeviceBuffer grad, int n, DeviceBuffer parts, float maxNorm,
                                DeviceBuffer norm, DeviceBuffer scale) {
        int P = gradNormPartial(be, grad, 0, n, parts, 0);
        gradClipScale(be, parts, P, maxNorm, norm, scale);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Loss

    /**
     * {@code softmax_xent_fwd_bwd} over {@code logits [N,V]} and {@code targets [N]} (I32) with padding id
     * {@code pad}: per-row {@code loss [N]} and {@code dlogits [N,V]} (which may be {@code logits}).
     */
    public static void softmaxXentFwdBwd(DeviceBackend be, int N, int V, int pad, DeviceBuffer logits,
                                         DeviceBuffer targets, DeviceBuffer loss, DeviceBuffer dlogits) {
        String k = SOFTMAX_XENT_FWD_BWD;
        positive(k, "N", N);
        positive(k, "V", V);
        f32(k, "logits", logits, (long) N * V);
        i32(k, "targets", targets, N);
        f32(k, "loss", loss, N);
        f32(k, "dlogits", dlogits, (long) N * V);
        be.launch(k, new long[] {N}, N, V, pad, logits, targets, loss, dlogits);
    }

    /** {@code softmax_xent_mean}: {@code out[0]} = the mean of {@code loss [N]} over the rows whose target is not pad. */
    public static void softmaxXentMean(DeviceBackend be, int N, int pad, DeviceBuffer targets, DeviceBuffer loss,
                                       DeviceBuffer out) {
        String k = SOFTMAX_XENT_MEAN;
        positive(k, "N", N);
        i32(k, "targets", targets, N);
        f32(k, "loss", loss, N);
        f32(k, "out", out, 1);
        be.launch(k, new long[] {1}, N, pad, targets, loss, out);
    }

    /**
     * {@code mse_fwd_bwd} over {@code pred [N]} and {@code target [N]}: {@code dpred [N] = 2 (pred - target) / N} and
     * {@code out[0]} = their mean squared error, as {@code MeanSquaredError} defines it, left on the device.
     * {@code dpred} must be another buffer than {@code pred}.
     */
    public static void mseFwdBwd(DeviceBackend be, int N, DeviceBuffer pred, DeviceBuffer target, DeviceBuffer dpred,
                                 DeviceBuffer out) {
        String k = MSE_FWD_BWD;
        positive(k, "N", N);
        f32(k, "pred", pred, N);
        f32(k, "target", target, N);
        f32(k, "dpred", dpred, N);
        f32(k, "out", out, 1);
        if (dpred == pred) throw bad(k, "dpred", "must be another buffer than pred (work item 0 reads every prediction)", "pred");
        be.launch(k, new long[] {N}, N, pred, target, dpred, out);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Pooling (many-to-one heads)

    /** The kinds of {@link #poolFwd} and {@link #poolBwd}. */
    public enum Pool {
        /** The mean over each sequence's own steps. */
        MEAN,
        /** The elementwise max over each sequence's own steps; the gradient goes to the first step holding it. */
        MAX
    }

    /**
     * {@code pool_mean_fwd} or {@code pool_max_fwd}: {@code out [B,W]} from time-major {@code y [T,B,W]} starting at
     * element {@code yoff} of its buffer, over each sequence's first {@code lengths[b]} steps ({@code lengths [B]},
     * I32, clipped to [0, T] on the device). MAX also writes the step of each maximum into {@code idx [B,W]} (I32),
     * what {@link #poolBwd} reads; MEAN takes no {@code idx} (null).
     */
    public static void poolFwd(DeviceBackend be, Pool kind, int T, int B, int W, DeviceBuffer y, int yoff,
                               DeviceBuffer lengths, DeviceBuffer out, DeviceBuffer idx) {
        if (kind == null) throw bad("pool_*_fwd", "kind", "must be MEAN or MAX", null);
        String k = kind == Pool.MAX ? POOL_MAX_FWD : POOL_MEAN_FWD;
        positive(k, "T", T);
        positive(k, "B", B);
        positive(k, "W", W);
        if (yoff < 0) throw bad(k, "yoff", "must be >= 0", yoff);
        f32(k, "y", y, (long) yoff + (long) T * B * W);
        i32(k, "lengths", lengths, B);
        f32(k, "out", out, (long) B * W);
        if (kind == Pool.MAX) {
            i32(k, "idx", idx, (long) B * W);
            be.launch(k, new long[] {W, B}, T, B, W, y, yoff, lengths, out, idx);
        } else {
            if (idx != null) throw bad(k, "idx", "must be null (MEAN keeps no indexes)", idx);
            be.launch(k, new long[] {W, B}, T, B, W, y, yoff, lengths, out);
        }
    }

    /**
     * {@code pool_mean_bwd} (from {@code lengths [B]}) or {@code pool_max_bwd} (from the forward's {@code idx [B,W]}):
     * overwrites all of {@code dy [T,B,W]} from element {@code dyoff} with the gradient of the pooling given
     * {@code dout [B,W]} (0 at the steps that were not pooled). Pass the one of {@code lengths} / {@code idx} the kind
     * reads and null for the other.
     */
    public static void poolBwd(DeviceBackend be, Pool kind, int T, int B, int W, DeviceBuffer lengths, DeviceBuffer idx,
                               DeviceBuffer dout, DeviceBuffer dy, int dyoff) {
        if (kind == null) throw bad("pool_*_bwd", "kind", "must be MEAN or MAX", null);
        String k = kind == Pool.MAX ? POOL_MAX_BWD : POOL_MEAN_BWD;
        positive(k, "T", T);
        positive(k, "B", B);
        positive(k, "W", W);
        if (dyoff < 0) throw bad(k, "dyoff", "must be >= 0", dyoff);
        f32(k, "dout", dout, (long) B * W);
        f32(k, "dy", dy, (long) dyoff + (long) T * B * W);
        if (kind == Pool.MAX) {
            if (lengths != null) throw bad(k, "lengths", "must be null (MAX reads the forward's idx)", lengths);
            i32(k, "idx", idx, (long) B * W);
            be.launch(k, new long[] {W, B}, T, B, W, idx, dout, dy, dyoff);
        } else {
            if (idx != null) throw bad(k, "idx", "must be null (MEAN reads the lengths)", idx);
            i32(k, "lengths", lengths, B);
            be.launch(k, new long[] {W, B}, T, B, W, lengths, dout, dy, dyoff);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Embedding

    /** {@code embedding_fwd}: {@code out [N,E]} = rows {@code ids [N]} (I32) of {@code weight [V,E]}. */
    public static void embeddingFwd(DeviceBackend be, int N, int E, int V, DeviceBuffer ids, DeviceBuffer weight,
                                    DeviceBuffer out) {
        String k = EMBEDDING_FWD;
        positive(k, "N", N);
        positive(k, "E", E);
        positive(k, "V", V);
        i32(k, "ids", ids, N);
        f32(k, "weight", weight, (long) V * E);
        f32(k, "out", out, (long) N * E);
        be.launch(k, new long[] {E, N}, N, E, V, ids, weight, out);
    }

    /**
     * The embedding gradient {@code dweight [V,E] = beta*dweight + scatter of dout [N,E]} by {@code ids}, padding id
     * {@code pad} excluded: {@code embedding_bwd_index} sorts the positions by id into {@code start [V+1]} and
     * {@code order [N]} (I32 scratch), then {@code embedding_bwd} sums each row's positions in order.
     */
    public static void embeddingBwd(DeviceBackend be, int N, int E, int V, int pad, DeviceBuffer ids, DeviceBuffer dout,
                                    DeviceBuffer start, DeviceBuffer order, DeviceBuffer dweight, float beta) {
        String k = EMBEDDING_BWD;
        positive(k, "N", N);
        positive(k, "E", E);
        positive(k, "V", V);
        i32(k, "ids", ids, N);
        f32(k, "dout", dout, (long) N * E);
        i32(k, "start", start, (long) V + 1);
        i32(k, "order", order, N);
        f32(k, "dweight", dweight, (long) V * E);
        be.launch(EMBEDDING_BWD_INDEX, new long[] {1}, N, V, pad, ids, start, order);
        be.launch(k, new long[] {E, V}, V, E, start, order, dout, dweight, beta);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Decoding

    /** {@code argmax_rows}: {@code idx [N]} (I32) = the first index of each row's maximum in {@code x [N,V]}. */
    public static void argmaxRows(DeviceBackend be, int N, int V, DeviceBuffer x, DeviceBuffer idx) {
        String k = ARGMAX_ROWS;
        positive(k, "N", N);
        positive(k, "V", V);
        f32(k, "x", x, (long) N * V);
        i32(k, "idx", idx, N);
        be.launch(k, new long[] {N}, N, V, x, idx);
    }

    /**
     * {@code source_mask}: from padded time-major source ids {@code [T,B]} (I32), {@code lengths [B]} = 1 + the last
     * step whose id is not {@code pad} (0 if none) and the attention mask {@code mask [B,T]} = 1 before that length,
     * 0 after (both I32), so that only the ids travel to the device.
     */
    public static void sourceMask(DeviceBackend be, int T, int B, int pad, DeviceBuffer ids, DeviceBuffer lengths,
                                  DeviceBuffer mask) {
        String k = SOURCE_MASK;
        positive(k, "T", T);
        positive(k, "B", B);
        i32(k, "ids", ids, (long) T * B);
        i32(k, "lengths", lengths, B);
        i32(k, "mask", mask, (long) B * T);
        be.launch(k, new long[] {B}, T, B, pad, ids, lengths, mask);
    }

    /** {@code topk_rows}: {@code vals [N,K]}, {@code idx [N,K]} (I32) = each row's K largest, largest first. */
    public static void topkRows(DeviceBackend be, int N, int V, int K, DeviceBuffer x, DeviceBuffer vals,
                                DeviceBuffer idx) {
        String k = TOPK_ROWS;
        positive(k, "N", N);
        positive(k, "V", V);
        if (K < 1 || K > V) throw bad(k, "K", "must be in [1, V=" + V + "]", K);
        f32(k, "x", x, (long) N * V);
        f32(k, "vals", vals, (long) N * K);
        i32(k, "idx", idx, (long) N * K);
        be.launch(k, new long[] {N}, N, V, K, x, vals, idx);
    }

    /**
     * {@code sample_rows}: {@code idx [N]} (I32) = one token per row of {@code x [N,V]} drawn from
     * {@code softmax(x / temperature)} at the uniform {@link #sampleUniform}{@code (seed, step, r)}, so that a draw
     * depends on (seed, step, row, the row) alone: the same on every backend and in
     * {@link dev.recur.backend.reference.ReferenceTrainKernels#sampleRows}, except a row whose uniform falls within
     * float32 rounding of a boundary of the cumulative sum (see {@code kernels/common/sample.h}). With {@code logp}
     * (F32 {@code [N]}, or null for none) also each chosen token's log-probability under the untempered softmax.
     *
     * @param step the decoding step (>= 0): with the row, the generator's counter, so each step draws afresh
     */
    public static void sampleRows(DeviceBackend be, int N, int V, float temperature, long seed, int step, DeviceBuffer x,
                                  DeviceBuffer idx, DeviceBuffer logp) {
        sampleRows(be, N, V, temperature, seed, step, x, null, 0, 0, idx, logp);
    }

    /**
     * {@link #sampleRows(DeviceBackend, int, int, float, long, int, DeviceBuffer, DeviceBuffer, DeviceBuffer)} drawing
     * only among the tokens whose logit is at least {@code cut[cutOff + r·cutStride]} (or all of them when
     * {@code cut} is null): with {@link #topkRows}'s {@code vals [N,K]}, {@code cutOff = K-1} and {@code cutStride = K}
     * that is top-k sampling (ties with the K-th logit kept). A NaN cut value cuts nothing.
     */
    public static void sampleRows(DeviceBackend be, int N, int V, float temperature, long seed, int step, DeviceBuffer x,
                                  DeviceBuffer cut, int cutOff, int cutStride, DeviceBuffer idx, DeviceBuffer logp) {
        String k = SAMPLE_ROWS;
        positive(k, "N", N);
        positive(k, "V", V);
        if (!(temperature > 0) || Float.isInfinite(temperature)) throw bad(k, "temperature", "must be a finite number > 0", temperature);
        if (step < 0) throw bad(k, "step", "must be >= 0", step);
        f32(k, "x", x, (long) N * V);
        if (cut != null) {
            if (cutOff < 0) throw bad(k, "cutOff", "must be >= 0", cutOff);
            if (cutStride < 1) throw bad(k, "cutStride", "must be >= 1 with a cut", cutStride);
            f32(k, "cut", cut, cutOff + (long) (N - 1) * cutStride + 1);
        }
        i32(k, "idx", idx, N);
        if (logp != null) f32(k, "logp", logp, N);
        // Buffers the kernel does not read or write (no cut, no logp) are stood in for by x.
        be.launch(k, new long[] {N}, N, V, temperature, (int) seed, (int) (seed >>> 32), step, logp != null ? 1 : 0,
                cut != null ? cutOff : 0, cut != null ? cutStride : 0, x, cut != null ? cut : x, idx, logp != null ? logp : x);
    }

    /**
     * {@code scheduled_feed}: the decoder input of step {@code step} under scheduled sampling, {@code next[nextOff + r]}
     * = {@code target[targetOff + r]} (the true previous token) when {@link #sampleUniform}{@code (seed, step, r) <
     * teacherForcing}, else {@code pred[r]} (the model's own prediction of the previous step, e.g. {@link #argmaxRows});
     * all I32. The comparison is exact (the uniform's 24 bits against {@code ceil(teacherForcing·2^24)}), so a host
     * that compares the same uniform with {@code teacherForcing} in float64 flips the same coins.
     *
     * @param teacherForcing the probability in [0, 1] of feeding the true token
     * @param step           the decoder step (>= 0): with the row, the generator's counter
     */
    public static void scheduledFeed(DeviceBackend be, int N, double teacherForcing, long seed, int step, DeviceBuffer target,
                                     int targetOff, DeviceBuffer pred, DeviceBuffer next, int nextOff) {
        String k = SCHEDULED_FEED;
        positive(k, "N", N);
        if (!(teacherForcing >= 0 && teacherForcing <= 1)) throw bad(k, "teacherForcing", "must be a probability in [0, 1]", teacherForcing);
        if (step < 0) throw bad(k, "step", "must be >= 0", step);
        if (targetOff < 0) throw bad(k, "targetOff", "must be >= 0", targetOff);
        if (nextOff < 0) throw bad(k, "nextOff", "must be >= 0", nextOff);
        i32(k, "target", target, (long) targetOff + N);
        i32(k, "pred", pred, N);
        i32(k, "next", next, (long) nextOff + N);
        // tf * 2^24 is exact in float64; bits < ceil(tf 2^24) <=> bits * 2^-24 < tf for the integer bits.
        int threshold = (int) Math.ceil(teacherForcing * 0x1.0p24);
        be.launch(k, new long[] {N}, N, threshold, (int) seed, (int) (seed >>> 32), step, target, targetOff, pred, next, nextOff);
    }

    /**
     * The uniform in [0, 1) that {@code sample_rows} draws row {@code row} of step {@code step} with, from
     * {@code seed}: splitmix64's finaliser over the counter {@code (step << 32) | row} offset by the mixed seed, its top
     * 24 bits (exact in float32). Integer arithmetic, so the reference and every backend compute the same number.
     */
    public static double sampleUniform(long seed, int step, int row) {
        long key = mix64(seed);
        long c = ((long) step << 32) | (row & 0xFFFFFFFFL);
        long h = mix64(key + (c + 1) * 0x9E3779B97F4A7C15L);
        return (h >>> 40) * 0x1.0p-24;
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Beam search (kernels/common/beam.h)

    /**
     * {@code beam_candidates}: the candidates {@code cand [B*K, V]} of one beam search step from the logits
     * {@code [B*K, V]}, the rows' tokens (I32, their finished flags) and cumulative scores, both {@code [B*K]} and
     * unread at {@code step} 0. Row {@code b*K + j}'s candidates are row {@code b} of {@code [B, K*V]}, what
     * {@link #topkRows} with K then ranks.
     */
    public static void beamCandidates(DeviceBackend be, int B, int K, int V, int step, int end, DeviceBuffer logits,
                                      DeviceBuffer tok, DeviceBuffer score, DeviceBuffer cand) {
        String k = BEAM_CANDIDATES;
        int n = beamRows(k, B, K, V);
        if (step < 0) throw bad(k, "step", "must be >= 0", step);
        token(k, "end", end, V);
        f32(k, "logits", logits, (long) n * V);
        i32(k, "tok", tok, n);
        f32(k, "score", score, n);
        f32(k, "cand", cand, (long) n * V);
        be.launch(k, new long[] {n}, n, K, V, step, end, logits, tok, score, cand);
    }

    /**
     * {@code beam_update}: from {@link #topkRows}' {@code vals}, {@code idx [B, K]} over the candidates, the rows'
     * {@code parents}, next tokens and scores ({@code [B*K]}) and the histories' row {@code step} of
     * {@code histTok}, {@code histPar [steps, B*K]} (I32).
     */
    public static void beamUpdate(DeviceBackend be, int B, int K, int V, int step, int end, DeviceBuffer vals,
                                  DeviceBuffer idx, DeviceBuffer parents, DeviceBuffer tok, DeviceBuffer score,
                                  DeviceBuffer histTok, DeviceBuffer histPar) {
        String k = BEAM_UPDATE;
        int n = beamRows(k, B, K, V);
        if (step < 0) throw bad(k, "step", "must be >= 0", step);
        token(k, "end", end, V);
        f32(k, "vals", vals, n);
        i32(k, "idx", idx, n);
        i32(k, "parents", parents, n);
        i32(k, "tok", tok, n);
        f32(k, "score", score, n);
        i32(k, "histTok", histTok, (long) (step + 1) * n);
        i32(k, "histPar", histPar, (long) (step + 1) * n);
        be.launch(k, new long[] {n}, n, K, V, step, end, vals, idx, parents, tok, score, histTok, histPar);
    }

    /**
     * {@code beam_backtrace}: after {@code S} steps, each item's answer (finished before open, then the higher
     * {@code score / length^alpha}) walked back through the histories: {@code out [B, S]} its tokens (the end token
     * and after it, end tokens), {@code at [B, S]} the flat {@code [S*B*K]} index of the row each came from (to gather
     * per-step rows such as attention), {@code scores [B, 2]} its log-probability and normalised score.
     */
    public static void beamBacktrace(DeviceBackend be, int B, int K, int S, int end, float alpha, DeviceBuffer score,
                                     DeviceBuffer histTok, DeviceBuffer histPar, DeviceBuffer out, DeviceBuffer at,
                                     DeviceBuffer scores) {
        String k = BEAM_BACKTRACE;
        positive(k, "B", B);
        positive(k, "K", K);
        positive(k, "S", S);
        if (end < 0) throw bad(k, "end", "must be >= 0", end);
        nonNegative(k, "alpha", alpha);
        int n = B * K;
        f32(k, "score", score, n);
        i32(k, "histTok", histTok, (long) S * n);
        i32(k, "histPar", histPar, (long) S * n);
        i32(k, "out", out, (long) B * S);
        i32(k, "at", at, (long) B * S);
        f32(k, "scores", scores, 2L * B);
        be.launch(k, new long[] {B}, B, K, S, end, alpha, score, histTok, histPar, out, at, scores);
    }

    /** {@code repeat_rows_i32}: {@code dst [M*R, C]} = each row of {@code src [M, C]} (I32) {@code R} times in a row. */
    public static void repeatRowsI32(DeviceBackend be, int M, int C, int R, DeviceBuffer src, DeviceBuffer dst) {
        String k = REPEAT_ROWS_I32;
        positive(k, "M", M);
        positive(k, "C", C);
        positive(k, "R", R);
        i32(k, "src", src, (long) M * C);
        i32(k, "dst", dst, (long) M * R * C);
        if (src == dst) throw bad(k, "dst", "must not be src", "the same buffer");
        be.launch(k, new long[] {C, (long) M * R}, M, C, R, src, dst);
    }

    /** B*K, after checking B, K and V and that B*K*V fits the kernels' int indexes. */
    private static int beamRows(String k, int B, int K, int V) {
        positive(k, "B", B);
        positive(k, "K", K);
        positive(k, "V", V);
        if ((long) B * K * V > Integer.MAX_VALUE) throw bad(k, "B*K*V", "must fit an int", (long) B * K * V);
        return B * K;
    }

    private static void token(String k, String arg, int t, int V) {
        if (t < 0 || t >= V) throw bad(k, arg, "must be in [0, V=" + V + ")", t);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Pointwise

    /** {@code bias_act_fwd}: {@code y [N,F] = act(x + bias)} ({@code y} may be {@code x}). */
    public static void biasActFwd(DeviceBackend be, int N, int F, Act act, DeviceBuffer x, DeviceBuffer bias,
                                  DeviceBuffer y) {
        String k = BIAS_ACT_FWD;
        positive(k, "N", N);
        positive(k, "F", F);
        if (act == null) throw bad(k, "act", "must not be null", null);
        f32(k, "x", x, (long) N * F);
        f32(k, "bias", bias, F);
        f32(k, "y", y, (long) N * F);
        be.launch(k, new long[] {F, N}, N, F, act.code(), x, bias, y);
    }

    /** {@code bias_act_bwd}: {@code dx [N,F] = dy * act'(y)} from the forward's output {@code y} ({@code dx} may be {@code dy}). */
    public static void biasActBwd(DeviceBackend be, int N, int F, Act act, DeviceBuffer y, DeviceBuffer dy,
                                  DeviceBuffer dx) {
        String k = BIAS_ACT_BWD;
        positive(k, "N", N);
        positive(k, "F", F);
        if (act == null) throw bad(k, "act", "must not be null", null);
        f32(k, "y", y, (long) N * F);
        f32(k, "dy", dy, (long) N * F);
        f32(k, "dx", dx, (long) N * F);
        be.launch(k, new long[] {F, N}, N, F, act.code(), y, dy, dx);
    }

    /**
     * {@code copy_strided}: the {@code [rows, cols]} block at {@code src[soff]} with row stride {@code sld} to
     * {@code dst[doff]} with row stride {@code dld}; the two ranges must not overlap.
     */
    public static void copyStrided(DeviceBackend be, int rows, int cols, DeviceBuffer src, int soff, int sld,
                                   DeviceBuffer dst, int doff, int dld) {
        String k = COPY_STRIDED;
        positive(k, "rows", rows);
        positive(k, "cols", cols);
        if (soff < 0) throw bad(k, "soff", "must be >= 0", soff);
        if (doff < 0) throw bad(k, "doff", "must be >= 0", doff);
        if (sld < cols) throw bad(k, "sld", "must be >= cols=" + cols, sld);
        if (dld < cols) throw bad(k, "dld", "must be >= cols=" + cols, dld);
        long sEnd = soff + (long) (rows - 1) * sld + cols, dEnd = doff + (long) (rows - 1) * dld + cols;
        f32(k, "src", src, sEnd);
        f32(k, "dst", dst, dEnd);
        if (src == dst && soff < dEnd && doff < sEnd) {
            throw bad(k, "dst", "overlaps src: elements [" + doff + ", " + dEnd + ") and [" + soff + ", " + sEnd + ")", doff);
        }
        be.launch(k, new long[] {cols, rows}, rows, cols, src, soff, sld, dst, doff, dld);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Checks

    private static IllegalArgumentException bad(String kernel, String arg, String what, Object got) {
        return new IllegalArgumentException(kernel + ": " + arg + " " + what + ", got " + got);
    }

    private static void range(String k, int off, int n) {
        if (off < 0) throw bad(k, "off", "must be >= 0", off);
        if (n < 0) throw bad(k, "n", "must be >= 0", n);
    }

    private static void positive(String k, String arg, int v) {
        if (v < 1) throw bad(k, arg, "must be >= 1", v);
    }

    private static void nonNegative(String k, String arg, float v) {
        if (!(v >= 0) || Float.isInfinite(v)) throw bad(k, arg, "must be a finite number >= 0", v);
    }

    private static void unit(String k, String arg, float v) {
        if (!(v >= 0 && v < 1)) throw bad(k, arg, "must be in [0, 1)", v);
    }

    private static void f32(String k, String arg, DeviceBuffer b, long elements) {
        buffer(k, arg, b, DeviceBuffer.Type.F32, elements);
    }

    private static void i32(String k, String arg, DeviceBuffer b, long elements) {
        buffer(k, arg, b, DeviceBuffer.Type.I32, elements);
    }

    private static void buffer(String k, String arg, DeviceBuffer b, DeviceBuffer.Type type, long elements) {
        if (b == null) throw bad(k, arg, "must be an " + type + " buffer", null);
        if (b.isClosed()) throw new IllegalStateException(k + ": " + arg + " is a closed buffer");
        if (b.type() != type) throw bad(k, arg, "must be an " + type + " buffer", b.type() + " buffer");
        if (elements > b.size()) {
            throw bad(k, arg, "needs " + elements + " elements", "a buffer of " + b.size());
        }
        if (elements > Integer.MAX_VALUE) {
            throw bad(k, arg, "needs " + elements + " elements, more than the kernels' int indexes reach", elements);
        }
    }
}
