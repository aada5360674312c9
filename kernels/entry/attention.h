/* Attention: additive (Bahdanau) scores and the masked softmax over encoder positions, forward and backward.
 *   attn_scores_additive_fwd  scores[u,b,t] = sum_a v[a] tanh(ekt[b,a,t] + dk[u,b,a])
 *                             8 consecutive t per work item                            grid {ceil(T/8), B, U}
 *   attn_scores_additive_bwd  ddk[u,b,a], dvpart[u,b,a] (z < U) and dek[t,b,a] (z = U + t) from ds [U,B,T],
 *                             recomputing tanh instead of storing [U,B,T,A];
 *                             8 consecutive a per work item                            grid {ceil(A/8), B, U + T}
 *   masked_softmax_fwd        weights = softmax of scores over valid t (0 where masked, all-0 rows when
 *                             nothing is valid)                                            grid {B, U}
 *   masked_softmax_bwd        ds = mask * w * (dw - sum_t w dw)                            grid {B, U}
 * with ek = enc W1^T [T,B,A], ekt its per-b transpose [B,A,T], dk = dec W2^T [U,B,A] and mask [B,T] int.
 * Dot, scaled and general scores and the context are strided-batched GEMMs (see dev.recur.schedule.AttentionSchedule). Bodies in
 * kernels/common/attention.h. */
#include "common/attention.h"

KERNEL void attn_scores_additive_fwd(int U, int B, int T, int A, GLOBAL const float* ekt, GLOBAL const float* dk,
                                     GLOBAL const float* v, GLOBAL float* scores) {
    attn_scores_additive_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), U, B, T, A, ekt, dk, v, scores);
}

KERNEL void attn_scores_additive_bwd(int U, int B, int T, int A, GLOBAL const float* ek, GLOBAL const float* dk,
                                     GLOBAL const float* v, GLOBAL const float* ds, GLOBAL float* ddk,
                                     GLOBAL float* dek, GLOBAL float* dvpart) {
    attn_scores_additive_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), U, B, T, A, ek, dk, v, ds, ddk, dek,
                                  dvpart);
}

KERNEL void masked_softmax_fwd(int U, int B, int T, GLOBAL const int* mask, GLOBAL const float* scores,
                               GLOBAL float* weights) {
    masked_softmax_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), U, B, T, mask, scores, weights);
}

KERNEL void masked_softmax_bwd(int U, int B, int T, GLOBAL const int* mask, GLOBAL const float* weights,
                               GLOBAL const float* dw, GLOBAL float* ds) {
    masked_softmax_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), U, B, T, mask, weights, dw, ds);
}
