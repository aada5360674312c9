/* Attention scoring (additive) and the masked softmax, forward and backward. Layouts (row-major):
 *   ek [T,B,A] = enc W1^T,  dk [U,B,A] = dec W2^T  (GEMMs before the kernels),  v [A]
 *   scores, weights, dw, ds [U,B,T];  mask [B,T] int (nonzero = valid)
 * Dot, scaled and general scores and the context are GEMMs batched over B; only these need kernels.
 *
 *   attn_scores_additive_fwd   scores[u,b,t] = sum_a v[a] tanh(ek[t,b,a] + dk[u,b,a])
 *                              grid {T, B, U}: one score per work item; the [U,B,T,A] tanh tensor is never stored
 *   attn_scores_additive_bwd   with th = tanh(ek[t,b,a] + dk[u,b,a]) recomputed and g = ds[u,b,t]:
 *                              z < U  (u = z):     ddk[u,b,a] = v[a] sum_t g (1 - th^2)
 *                                                  dvpart[u,b,a] = sum_t g th   (dv = column sum over u,b)
 *                              z >= U (t = z - U): dek[t,b,a] = v[a] sum_u g (1 - th^2)
 *                              grid {A, B, U + T}: each work item owns its outputs, so no atomics
 *   masked_softmax_fwd         w[u,b,t] = mask[b,t] exp(s - m) / sum_t' mask[b,t'] exp(s' - m), m = max over
 *                              valid t; exactly 0 where masked; a row with no valid position is all 0
 *                              grid {B, U}: one row of T per work item
 *   masked_softmax_bwd         ds[u,b,t] = mask[b,t] w (dw - sum_t' w dw)     grid {B, U}
 */
#ifndef RECUR_ATTENTION_H
#define RECUR_ATTENTION_H
#include "dialect.h"

FN void attn_scores_additive_fwd_body(int t, int b, int u, int U, int B, int T, int A,
                                      GLOBAL const float* RESTRICT ek, GLOBAL const float* RESTRICT dk,
                                      GLOBAL const float* RESTRICT v, GLOBAL float* RESTRICT scores) {
    if (t >= T || b >= B || u >= U) return;
    GLOBAL const float* e = ek + (t * B + b) * A;
    GLOBAL const float* d = dk + (u * B + b) * A;
    float acc = 0.0f;
    for (int a = 0; a < A; a++) acc += v[a] * TANHF(e[a] + d[a]);
    scores[(u * B + b) * T + t] = acc;
}

FN void attn_scores_additive_bwd_body(int a, int b, int z, int U, int B, int T, int A,
                                      GLOBAL const float* RESTRICT ek, GLOBAL const float* RESTRICT dk,
                                      GLOBAL const float* RESTRICT v, GLOBAL const float* RESTRICT ds,
                                      GLOBAL float* RESTRICT ddk, GLOBAL float* RESTRICT dek,
                                      GLOBAL float* RESTRICT dvpart) {
    if (a >= A || b >= B || z >= U + T) return;
    float va = v[a];
    if (z < U) {
        int row = z * B + b;
        float dka = dk[row * A + a];
        float accd = 0.0f, accv = 0.0f;
        for (int t = 0; t < T; t++) {
            float g = ds[row * T + t];
            float th = TANHF(ek[(t * B + b) * A + a] + dka);
            accv += g * th;
            accd += g * (1.0f - th * th);
        }
        ddk[row * A + a] = va * accd;
        dvpart[row * A + a] = accv;
    } else {
        int t = z - U;
        float eka = ek[(t * B + b) * A + a];
        float acc = 0.0f;
        for (int u = 0; u < U; u++) {
            float g = ds[(u * B + b) * T + t];
            float th = TANHF(eka + dk[(u * B + b) * A + a]);
            acc += g * (1.0f - th * th);
        }
        dek[(t * B + b) * A + a] = va * acc;
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
