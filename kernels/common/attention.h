/* Attention scoring (additive) and the masked softmax, forward and backward. Layouts (row-major):
 *   ekt [B,A,T] = (enc W1^T) transposed per b (forward), ek [T,B,A] = enc W1^T (backward), dk [U,B,A] = dec W2^T
 *   (GEMMs before the kernels), v [A];  scores, weights, dw, ds [U,B,T];  mask [B,T] int (nonzero = valid)
 * Dot, scaled and general scores and the context are GEMMs batched over B; only these need kernels.
 *
 *   attn_scores_additive_fwd   scores[u,b,t] = sum_a v[a] tanh(ekt[b,a,t] + dk[u,b,a])
 *                              grid {ceil(T/8), B, U}: 8 consecutive t per work item; the [U,B,T,A] tanh tensor
 *                              is never stored
 *   attn_scores_additive_bwd   with th = tanh(ek[t,b,a] + dk[u,b,a]) recomputed and g = ds[u,b,t]:
 *                              z < U  (u = z):     ddk[u,b,a] = v[a] sum_t g (1 - th^2)
 *                                                  dvpart[u,b,a] = sum_t g th   (dv = column sum over u,b)
 *                              z >= U (t = z - U): dek[t,b,a] = v[a] sum_u g (1 - th^2)
 *                              grid {ceil(A/8), B, U + T}: 8 consecutive a per work item, each work item owns
 *                              its outputs, so no atomics
 *   masked_softmax_fwd         w[u,b,t] = mask[b,t] exp(s - m) / sum_t' mask[b,t'] exp(s' - m), m = max over
 *                              valid t; exactly 0 where masked; a row with no valid position is all 0
 *                              grid {B, U}: one row of T per work item
 *   masked_softmax_bwd         ds[u,b,t] = mask[b,t] w (dw - sum_t' w dw)     grid {B, U}
 */
#ifndef RECUR_ATTENTION_H
#define RECUR_ATTENTION_H
#include "dialect.h"
#include "step.h"

/* tanh is step.h's recur_tanh: a rational function with only multiply-adds and one division, so the chunked
 * loops below vectorise completely; a library tanh or exp is a call per lane on CPU OpenCL. */

/* Each work item of the additive kernels covers ATTN_TT consecutive outputs along the contiguous axis (t of the
 * forward, a of the backward) with private accumulators: the innermost loop then has a fixed trip count over
 * independent lanes, which compilers unroll and vectorise (PoCL: 3-4x less CPU time than one output per work
 * item, whose inner loop is a float reduction that cannot be reordered without fast-math). The helpers take the
 * lane count n so that the full-chunk call, with n = ATTN_TT, is a compile-time constant after inlining. */
#define ATTN_TT 8

FN void attn_additive_fwd_chunk(GLOBAL const float* RESTRICT e, GLOBAL const float* RESTRICT d,
                                GLOBAL const float* RESTRICT v, GLOBAL float* RESTRICT out, int A, int T, int n) {
    float acc[ATTN_TT];
    for (int k = 0; k < ATTN_TT; k++) acc[k] = 0.0f;
    for (int a = 0; a < A; a++) {
        float da = d[a], va = v[a];
        for (int k = 0; k < n; k++) acc[k] += va * recur_tanh(e[a * T + k] + da);
    }
    for (int k = 0; k < n; k++) out[k] = acc[k];
}

/* ekt [B, A, T] (the transpose of ek per b, so consecutive t are contiguous). Grid {ceil(T/ATTN_TT), B, U}. */
FN void attn_scores_additive_fwd_body(int tc, int b, int u, int U, int B, int T, int A,
                                      GLOBAL const float* RESTRICT ekt, GLOBAL const float* RESTRICT dk,
                                      GLOBAL const float* RESTRICT v, GLOBAL float* RESTRICT scores) {
    int t0 = tc * ATTN_TT;
    if (t0 >= T || b >= B || u >= U) return;
    GLOBAL const float* e = ekt + b * A * T + t0;
    GLOBAL const float* d = dk + (u * B + b) * A;
    GLOBAL float* out = scores + (u * B + b) * T + t0;
    if (t0 + ATTN_TT <= T) attn_additive_fwd_chunk(e, d, v, out, A, T, ATTN_TT);
    else attn_additive_fwd_chunk(e, d, v, out, A, T, T - t0);
}

/* Decoder side of one (u, b) and lanes a0..a0+n-1: ddk = v sum_t g (1 - th^2), dvpart = sum_t g th. */
FN void attn_additive_bwd_dec_chunk(int row, int b, int a0, int B, int T, int A, GLOBAL const float* RESTRICT ek,
                                    GLOBAL const float* RESTRICT dk, GLOBAL const float* RESTRICT v,
                                    GLOBAL const float* RESTRICT ds, GLOBAL float* RESTRICT ddk,
                                    GLOBAL float* RESTRICT dvpart, int n) {
    float dka[ATTN_TT], accd[ATTN_TT], accv[ATTN_TT];
    for (int k = 0; k < ATTN_TT; k++) {
        dka[k] = k < n ? dk[row * A + a0 + k] : 0.0f;
        accd[k] = 0.0f;
        accv[k] = 0.0f;
    }
    for (int t = 0; t < T; t++) {
        float g = ds[row * T + t];
        GLOBAL const float* e = ek + (t * B + b) * A + a0;
        for (int k = 0; k < n; k++) {
            float th = recur_tanh(e[k] + dka[k]);
            accv[k] += g * th;
            accd[k] += g * (1.0f - th * th);
        }
    }
    for (int k = 0; k < n; k++) {
        ddk[row * A + a0 + k] = v[a0 + k] * accd[k];
        dvpart[row * A + a0 + k] = accv[k];
    }
}

/* Encoder side of one (t, b) and lanes a0..a0+n-1: dek = v sum_u g (1 - th^2). */
FN void attn_additive_bwd_enc_chunk(int t, int b, int a0, int U, int B, int T, int A, GLOBAL const float* RESTRICT ek,
                                    GLOBAL const float* RESTRICT dk, GLOBAL const float* RESTRICT v,
                                    GLOBAL const float* RESTRICT ds, GLOBAL float* RESTRICT dek, int n) {
    float eka[ATTN_TT], acc[ATTN_TT];
    int erow = (t * B + b) * A + a0;
    for (int k = 0; k < ATTN_TT; k++) {
        eka[k] = k < n ? ek[erow + k] : 0.0f;
        acc[k] = 0.0f;
    }
    for (int u = 0; u < U; u++) {
        float g = ds[(u * B + b) * T + t];
        GLOBAL const float* d = dk + (u * B + b) * A + a0;
        for (int k = 0; k < n; k++) {
            float th = recur_tanh(eka[k] + d[k]);
            acc[k] += g * (1.0f - th * th);
        }
    }
    for (int k = 0; k < n; k++) dek[erow + k] = v[a0 + k] * acc[k];
}

/* ek [T,B,A]. Grid {ceil(A/ATTN_TT), B, U + T}: z < U is decoder row u = z, z >= U encoder row t = z - U. */
FN void attn_scores_additive_bwd_body(int ac, int b, int z, int U, int B, int T, int A,
                                      GLOBAL const float* RESTRICT ek, GLOBAL const float* RESTRICT dk,
                                      GLOBAL const float* RESTRICT v, GLOBAL const float* RESTRICT ds,
                                      GLOBAL float* RESTRICT ddk, GLOBAL float* RESTRICT dek,
                                      GLOBAL float* RESTRICT dvpart) {
    int a0 = ac * ATTN_TT;
    if (a0 >= A || b >= B || z >= U + T) return;
    int n = A - a0 < ATTN_TT ? A - a0 : ATTN_TT;
    if (z < U) {
        if (n == ATTN_TT) attn_additive_bwd_dec_chunk(z * B + b, b, a0, B, T, A, ek, dk, v, ds, ddk, dvpart, ATTN_TT);
        else attn_additive_bwd_dec_chunk(z * B + b, b, a0, B, T, A, ek, dk, v, ds, ddk, dvpart, n);
    } else {
        if (n == ATTN_TT) attn_additive_bwd_enc_chunk(z - U, b, a0, U, B, T, A, ek, dk, v, ds, dek, ATTN_TT);
        else attn_additive_bwd_enc_chunk(z - U, b, a0, U, B, T, A, ek, dk, v, ds, dek, n);
    }
}

FN void masked_softmax_fwd_body(int b, int u, int U, int B, int T, GLOBAL const int* RESTRICT mask,
                                GLOBAL const float* RESTRICT scores, GLOBAL float* RESTRICT weights) {
    if (b >= B || u >= U) return;
    GLOBAL const int* m = mask + b * T;
    GLOBAL const float* s = scores + (u * B + b) * T;
    GLOBAL float* w = weights + (u * B + b) * T;
    int any = 0;
    float mx = 0.0f;
    for (int t = 0; t < T; t++) {
        if (m[t] != 0 && (any == 0 || s[t] > mx)) {
            mx = s[t];
            any = 1;
        }
    }
    if (any == 0) {
        /* Every position masked: zero weights (and so a zero context) rather than 0/0. */
        for (int t = 0; t < T; t++) w[t] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int t = 0; t < T; t++) {
        float e = m[t] != 0 ? EXPF(s[t] - mx) : 0.0f;
        w[t] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int t = 0; t < T; t++) w[t] *= inv;
}

FN void masked_softmax_bwd_body(int b, int u, int U, int B, int T, GLOBAL const int* RESTRICT mask,
                                GLOBAL const float* RESTRICT weights, GLOBAL const float* RESTRICT dw,
                                GLOBAL float* RESTRICT ds) {
    if (b >= B || u >= U) return;
    GLOBAL const int* m = mask + b * T;
    int row = (u * B + b) * T;
    float dot = 0.0f;
    for (int t = 0; t < T; t++) dot += weights[row + t] * dw[row + t];
    for (int t = 0; t < T; t++) ds[row + t] = m[t] != 0 ? weights[row + t] * (dw[row + t] - dot) : 0.0f;
}

#endif
