/* Layer-level kernels around the time loop: state masking, the h_{t-1} gather for dW_hh, input and
 * between-layer dropout, merging the directions (with residual), and the bias-gradient reduction.
 *   rnn_dh0:          dh0[d,b,j] = dhrec*mask_rec(d,b,j) + (hasDdir ? ddir : 0)                 grid {P,B,D}
 *   mask_state:       dst[d,b,j] = src[d,b,j]*mask_rec(d,b,j)                                      grid {P,B,D}
 *   gather_hprev:     dst[t,b,d,j] = t < len ? (first ? h0[d,b,j] : y[prev t,b,d,j])*mask_rec : 0   grid {P,B,T*D}
 *   input_dropout_fwd dst[d,t,b,j] = x[t,b,j]*mask(stream(layer,d,INPUT), b*I+j)                  grid {I,B,T*D}
 *   input_dropout_bwd dx[t,b,j] = sum_d dxd[d,t,b,j]*mask(stream(layer,d,INPUT), b*I+j)            grid {I,B,T}
 *   merge_fwd:        dst[t,b,j] = t < len ? (merge(y)[t,b,j] + [in[t,b,j]])*mask_between : 0       grid {W,B,T}
 *                     merge: concat [y0; y1], sum y0+y1, ave (y0+y1)/2, mul y0*y1 (D = 1: y0)
 *   merge_bwd:        dy[t,b,d,j] = t < len ? d merge/d y_d applied to dout : 0                     grid {P,B,T*D}
 *   layer_input_bwd:  dst[t,b,j] = (dx[t,b,j] + [t < len ? dout[t,b,j] : 0])*mask_between(layer)    grid {W,B,T}
 *   col_sum:          dst[j] = beta*dst[j] + sum_i src[i*N + j]                                     grid {N} */
#ifndef RECUR_LAYER_H
#define RECUR_LAYER_H
#include "step.h"

#define RECUR_MERGE_CONCAT 0
#define RECUR_MERGE_SUM 1
#define RECUR_MERGE_AVE 2
#define RECUR_MERGE_MUL 3

FN void rnn_dh0_body(int j, int b, int d, int B, int P, int D, int has_ddir,
                     GLOBAL const float* dhrec, GLOBAL const float* ddir, GLOBAL float* dh0,
                     int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= P || b >= B || d >= D) return;
    int o = recur_dbw(d, b, B, P, j);
    float v = dhrec[o] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * P + j, thresh, scale);
    if (has_ddir) v += ddir[o];
    dh0[o] = v;
}

FN void mask_state_body(int j, int b, int d, int B, int P, int D, GLOBAL const float* src, GLOBAL float* dst,
                        int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= P || b >= B || d >= D) return;
    int o = recur_dbw(d, b, B, P, j);
    dst[o] = src[o] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * P + j, thresh, scale);
}

FN void gather_hprev_body(int j, int b, int td, int T, int B, int P, int D,
                          GLOBAL const int* lengths, GLOBAL const float* y, GLOBAL const float* h0, GLOBAL float* dst,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= P || b >= B || td >= T * D) return;
    int t = td / D, d = td - t * D;
    int len = lengths[b];
    int o = recur_tbd(t, b, d, B, D, P, j);
#if defined(__OPENCL_VERSION__)
    /* PoCL runs this kernel one scalar work item at a time (6.6 ns each: 2.7 ms for T=50, B=32, P=256): the
     * first work item of every 8 moves 8 values as one float8 and the other 7 return (the host rounds the
     * grid up to whole work-groups of 16 or 64, so every element is covered). */
    if ((j & 7) != 0) return;
    if (j + 8 <= P && thresh == 0) {
        float8 v = 0.0f;
        if (t < len) v = recur_is_first(t, d, len) ? vload8(0, h0 + recur_dbw(d, b, B, P, j))
                                                   : vload8(0, y + recur_tbd(recur_prev_time(t, d), b, d, B, D, P, j));
        vstore8(v, 0, dst + o);
        return;
    }
    for (int u = 0; u < 8 && j + u < P; u++) {
        float v = 0.0f;
        if (t < len) {
            v = recur_is_first(t, d, len) ? h0[recur_dbw(d, b, B, P, j + u)]
                                          : y[recur_tbd(recur_prev_time(t, d), b, d, B, D, P, j + u)];
            v *= recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * P + j + u, thresh, scale);
        }
        dst[o + u] = v;
    }
    return;
#endif
    if (t >= len) {
        dst[o] = 0.0f;
        return;
    }
    float v = recur_is_first(t, d, len) ? h0[recur_dbw(d, b, B, P, j)]
                                        : y[recur_tbd(recur_prev_time(t, d), b, d, B, D, P, j)];
    dst[o] = v * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * P + j, thresh, scale);
}

FN void input_dropout_fwd_body(int j, int b, int td, int T, int B, int I, int D,
                               GLOBAL const float* x, GLOBAL float* dst,
                               int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= I || b >= B || td >= T * D) return;
    int t = td / D, d = td - t * D;
    int xo = (t * B + b) * I + j;
    dst[d * T * B * I + xo] =
        x[xo] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_INPUT), b * I + j, thresh, scale);
}

FN void input_dropout_bwd_body(int j, int b, int t, int T, int B, int I, int D,
                               GLOBAL const float* dxd, GLOBAL float* dx,
                               int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= I || b >= B || t >= T) return;
    int xo = (t * B + b) * I + j;
    float v = 0.0f;
    for (int d = 0; d < D; d++) {
        v += dxd[d * T * B * I + xo]
             * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_INPUT), b * I + j, thresh, scale);
    }
    dx[xo] = v;
}

FN void merge_fwd_body(int j, int b, int t, int T, int B, int P, int D, int W, int mode, int residual,
                       GLOBAL const int* lengths, GLOBAL const float* y, GLOBAL const float* in, GLOBAL float* dst,
                       int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= W || b >= B || t >= T) return;
    int o = (t * B + b) * W + j;
    if (t >= lengths[b]) {
        dst[o] = 0.0f;
        return;
    }
    float v;
    if (D == 1 || mode == RECUR_MERGE_CONCAT) {
        v = y[o];
    } else {
        float y0 = y[recur_tbd(t, b, 0, B, 2, P, j)];
        float y1 = y[recur_tbd(t, b, 1, B, 2, P, j)];
        v = mode == RECUR_MERGE_SUM ? y0 + y1 : mode == RECUR_MERGE_AVE ? (y0 + y1) * 0.5f : y0 * y1;
    }
    if (residual) v += in[o];
    dst[o] = v * recur_mask(seed_lo, seed_hi, recur_stream(layer, 0, RECUR_DROP_BETWEEN), o, thresh, scale);
}

FN void merge_bwd_body(int j, int b, int td, int T, int B, int P, int D, int W, int mode,
                       GLOBAL const int* lengths, GLOBAL const float* dout, GLOBAL const float* y, GLOBAL float* dy) {
    if (j >= P || b >= B || td >= T * D) return;
    int t = td / D, d = td - t * D;
    int o = recur_tbd(t, b, d, B, D, P, j);
    if (t >= lengths[b]) {
        dy[o] = 0.0f;
        return;
    }
    float v;
    if (D == 1 || mode == RECUR_MERGE_CONCAT) {
        v = dout[o];
    } else {
        float g = dout[(t * B + b) * W + j];
        v = mode == RECUR_MERGE_SUM ? g : mode == RECUR_MERGE_AVE ? 0.5f * g
                                                                 : g * y[recur_tbd(t, b, 1 - d, B, 2, P, j)];
    }
    dy[o] = v;
}

FN void layer_input_bwd_body(int j, int b, int t, int T, int B, int W, int residual,
                             GLOBAL const int* lengths, GLOBAL const float* dx, GLOBAL const float* dout,
                             GLOBAL float* dst, int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= W || b >= B || t >= T) return;
    int o = (t * B + b) * W + j;
    float v = dx[o];
    if (residual && t < lengths[b]) v += dout[o];
    dst[o] = v * recur_mask(seed_lo, seed_hi, recur_stream(layer, 0, RECUR_DROP_BETWEEN), o, thresh, scale);
}

FN void col_sum_body(int j, int M, int N, GLOBAL const float* src, GLOBAL float* dst, float beta) {
    if (j >= N) return;
#if defined(__OPENCL_VERSION__)
    /* On a CPU device (PoCL) a work item that walks one column loads 4 bytes per row at a row stride (one page
     * per row at N = 1024): 10 ms for a 1600 x 1024 sum. Here the first work item of every 16 columns sums
     * their whole 64-byte row pieces as float8 vectors (two rows at a time for independent adds) and the other
     * 15 return; the host rounds the grid up to whole work-groups of 16 or 64, so every column is covered. */
    if ((j & 15) != 0) return;
    if (j + 16 <= N) {
        float8 s0 = 0, s1 = 0, t0 = 0, t1 = 0;
        int i = 0;
        for (; i + 1 < M; i += 2) {
            GLOBAL const float* r = src + i * N + j;
            s0 += vload8(0, r);
            s1 += vload8(1, r);
            t0 += vload8(0, r + N);
            t1 += vload8(1, r + N);
        }
        if (i < M) {
            s0 += vload8(0, src + i * N + j);
            s1 += vload8(1, src + i * N + j);
        }
        s0 += t0;
        s1 += t1;
        GLOBAL float* o = dst + j;
        if (beta != 0.0f) {
            s0 += beta * vload8(0, o);
            s1 += beta * vload8(1, o);
        }
        vstore8(s0, 0, o);
        vstore8(s1, 1, o);
        return;
    }
    for (int jj = j; jj < N; jj++) {
        float acc = 0.0f;
        for (int i = 0; i < M; i++) acc += src[i * N + jj];
        dst[jj] = (beta == 0.0f ? 0.0f : beta * dst[jj]) + acc;
    }
    return;
#endif
    float acc = 0.0f;
    for (int i = 0; i < M; i++) acc += src[i * N + j];
    dst[j] = (beta == 0.0f ? 0.0f : beta * dst[j]) + acc;
}

#endif
