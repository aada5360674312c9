package dev.recur.backend;

import java.util.List;

/**
 * The catalogue of the attention kernels {@code dev.recur.schedule.AttentionSchedule} launches through
 * {@link DeviceBackend#launch} (the counterpart of {@link Kernels} for the RNN schedule).
 * Bodies in {@code kernels/common/attention.h}, entry points of the same names in
 * {@code kernels/entry/attention.h} (included by {@code kernels/opencl/attention.cl} and {@code kernels/cuda/attention.cu}); a backend without a kernel
 * compiler implements each name in Java from this list.
 *
 * <h2>Conventions</h2>
 * {@code U} decoder steps, {@code B} batch, {@code T} encoder positions, {@code A} the additive score's
 * hidden width. Row-major: {@code ek [T,B,A] = enc W1^T}, its per-b transpose {@code ekt [B,A,T]} and
 * {@code dk [U,B,A] = dec W2^T} (GEMMs done before the kernels), {@code v [A]}; {@code scores, weights, dw, ds [U,B,T]}; {@code mask [B,T]} int32,
 * nonzero = valid. Grids are {@code {x, y, z}} with x fastest; every work item bounds-checks its indexes
 * and owns its outputs (no atomics, no work-group cooperation).
 *
 * <h2>Kernels</h2>
 * <pre>
 * attn_scores_additive_fwd grid {ceil(T/8),B,U}: U,B,T,A, ekt, dk, v, scores
 *                  scores[u,b,t] = sum_a v[a] tanh(ekt[b,a,t] + dk[u,b,a]); work item x covers t = 8x .. 8x+7
 * attn_scores_additive_bwd grid {ceil(A/8),B,U+T}: U,B,T,A, ek, dk, v, ds, ddk, dek, dvpart
 *                  th = tanh(ek[t,b,a] + dk[u,b,a]) recomputed, g = ds[u,b,t]; work item x covers a = 8x .. 8x+7;
 *                  z &lt; U:  ddk[z,b,a] = v[a] sum_t g (1 - th^2),  dvpart[z,b,a] = sum_t g th
 *                  z &gt;= U: dek[z-U,b,a] = v[a] sum_u g (1 - th^2)
 *                  (dv = column sums of dvpart [U*B, A]: {@link Kernels#COL_SUM})
 * masked_softmax_fwd grid {B,U}: U,B,T, mask, scores, weights
 *                  weights[u,b,:] = softmax of scores[u,b,:] over t with mask[b,t] != 0; exactly 0 at masked t;
 *                  all 0 when no t is valid
 * masked_softmax_bwd grid {B,U}: U,B,T, mask, weights, dw, ds
 *                  ds[u,b,t] = mask[b,t] != 0 ? w (dw - sum_t' w dw) : 0
 * </pre>
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    public static final String ATTN_SCORES_ADDITIVE_FWD = "attn_scores_additive_fwd";
    public static final String ATTN_SCORES_ADDITIVE_BWD = "attn_scores_additive_bwd";
    public static final String MASKED_SOFTMAX_FWD = "masked_softmax_fwd";
    public static final String MASKED_SOFTMAX_BWD = "masked_softmax_bwd";

    /** Outputs per work item along dimension 0 of the additive kernels ({@code ATTN_TT} in attention.h). */
    public static final int ADDITIVE_CHUNK = 8;

    /** Every attention kernel (all in {@code attention.cl} / {@code attention.cu}). */
    public static final List<String> ALL = List.of(ATTN_SCORES_ADDITIVE_FWD, ATTN_SCORES_ADDITIVE_BWD,
            MASKED_SOFTMAX_FWD, MASKED_SOFTMAX_BWD);
}
