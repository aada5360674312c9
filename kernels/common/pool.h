/* Masked pooling of time-major outputs y [T, B, W] (element (t, b, j) at yoff + (t*B + b)*W + j) over each sequence's
 * own steps, for many-to-one heads; len_b = lengths[b] clipped to [0, T]:
 *   pool_mean_fwd  out[b, j] = (sum over t < len_b of y[t, b, j], t ascending) / len_b        (0 when len_b = 0)
 *   pool_mean_bwd  dy[t, b, j] = dout[b, j] / len_b for t < len_b, 0 for t >= len_b             (every t < T written)
 *   pool_max_fwd   out[b, j] = y[s, b, j] and idx[b, j] = s, s = the first step holding the maximum: s starts at 0
 *                  and moves to t only when y[t, b, j] > y[s, b, j] (the host Pooling.MAX rule, so a NaN at step 0
 *                  stays); len_b = 0: out 0, idx -1
 *   pool_max_bwd   dy[t, b, j] = dout[b, j] if t == idx[b, j] else 0                              (every t < T written)
 * The gradients overwrite dy (padded steps included), so the recurrent backward can read it without a fill.
 * Launch: grid {W, B}, one work item per (j, b) looping over t: the sums run in a fixed order, no atomics. */
#ifndef RECUR_POOL_H
#define RECUR_POOL_H
#include "dialect.h"

FN int recur_pool_len(GLOBAL const int* lengths, int b, int T) {
    int len = lengths[b];
    return len < 0 ? 0 : (len > T ? T : len);
}

FN void pool_mean_fwd_body(int j, int b, int T, int B, int W, GLOBAL const float* y, int yoff,
                           GLOBAL const int* lengths, GLOBAL float* out) {
    if (j >= W || b >= B) return;
    int len = recur_pool_len(lengths, b, T);
    GLOBAL const float* col = y + yoff + b * W + j;
    float s = 0.0f;
    for (int t = 0; t < len; t++) s += col[t * B * W];
    out[b * W + j] = len > 0 ? s / (float) len : 0.0f;
}

FN void pool_mean_bwd_body(int j, int b, int T, int B, int W, GLOBAL const int* lengths, GLOBAL const float* dout,
                           GLOBAL float* dy, int dyoff) {
    if (j >= W || b >= B) return;
    int len = recur_pool_len(lengths, b, T);
    float g = len > 0 ? dout[b * W + j] / (float) len : 0.0f;
    GLOBAL float* col = dy + dyoff + b * W + j;
    for (int t = 0; t < T; t++) col[t * B * W] = t < len ? g : 0.0f;
}

FN void pool_max_fwd_body(int j, int b, int T, int B, int W, GLOBAL const float* y, int yoff,
                          GLOBAL const int* lengths, GLOBAL float* out, GLOBAL int* idx) {
    if (j >= W || b >= B) return;
    int len = recur_pool_len(lengths, b, T);
    if (len == 0) {
        out[b * W + j] = 0.0f;
        idx[b * W + j] = -1;
        return;
    }
    GLOBAL const float* col = y + yoff + b * W + j;
    int best = 0;
    float bv = col[0];
    for (int t = 1; t < len; t++) {
        float v = col[t * B * W];
        if (v > bv) {
            bv = v;
            best = t;
        }
    }
    out[b * W + j] = bv;
    idx[b * W + j] = best;
}

FN void pool_max_bwd_body(int j, int b, int T, int B, int W, GLOBAL const int* idx, GLOBAL const float* dout,
                          GLOBAL float* dy, int dyoff) {
    if (j >= W || b >= B) return;
    int s = idx[b * W + j];
    float g = dout[b * W + j];
    GLOBAL float* col = dy + dyoff + b * W + j;
    for (int t = 0; t < T; t++) col[t * B * W] = t == s ? g : 0.0f;
}

#endif
