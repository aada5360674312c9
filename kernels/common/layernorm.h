/* Layer normalisation of gate blocks (H values each), per block: a = (v - mean) / sqrt(var + 1e-5) * gain + shift,
 * biased variance, gain/shift indexed [D, G*H]. Backward, with xh the normalised values and r = 1/sqrt(var+eps):
 *   dxh = da * gain;  dv = r * (dxh - mean(dxh) - xh * mean(dxh * xh))
 *   (gain and shift gradients are column sums of da*xh and da over all rows, see col_dot / col_sum).
 *   ln_rows_fwd   grid {rows}: every row of a [.., D, G, H] array (the input projections of all steps), in place
 *   ln_rows_bwd   grid {rows}: dv from da for those rows
 *   ln_step_fwd   grid {nblk, B, D}: blocks g0..g0+nblk-1 of this step's recurrent projection [D,B,G*H] in place,
 *                 saving xh and r by time ([T,B,D,G*H], [T,B,D,G]; zeros at padded positions)
 *   ln_step_bwd   grid {nblk, B, D}: da -> dv in place in dgs [D,B,G*H], and dv by time in dvall
 *   col_dot       grid {N}: dst[j] = beta*dst[j] + sum_i a[i*N+j]*b[i*N+j] */
#ifndef RECUR_LAYERNORM_H
#define RECUR_LAYERNORM_H
#include "step.h"

#define RECUR_LN_EPS 1e-5f

/* Normalises v[0..H) in place (gain/shift at gs[0..H)); writes xh when xh != 0 ... returns rstd. */
FN float recur_ln_row(GLOBAL float* v, int H, GLOBAL const float* gain, GLOBAL const float* shift, int save,
                      GLOBAL float* xh) {
    float mean = 0.0f;
    for (int j = 0; j < H; j++) mean += v[j];
    mean /= (float) H;
    float var = 0.0f;
    for (int j = 0; j < H; j++) {
        float c = v[j] - mean;
        var += c * c;
    }
    var /= (float) H;
    float r = 1.0f / SQRTF(var + RECUR_LN_EPS);
    for (int j = 0; j < H; j++) {
        float x = (v[j] - mean) * r;
        if (save) xh[j] = x;
        v[j] = x * gain[j] + shift[j];
    }
    return r;
}

/* dv[j] from da[j]; da and dv may be the same row. */
FN void recur_ln_row_bwd(GLOBAL const float* da, int H, GLOBAL const float* gain, GLOBAL const float* xh, float r,
                         GLOBAL float* dv) {
    float m1 = 0.0f, m2 = 0.0f;
    for (int j = 0; j < H; j++) {
        float g = da[j] * gain[j];
        m1 += g;
        m2 += g * xh[j];
    }
    m1 /= (float) H;
    m2 /= (float) H;
    for (int j = 0; j < H; j++) dv[j] = r * (da[j] * gain[j] - m1 - xh[j] * m2);
}

FN void ln_rows_fwd_body(int row, int rows, int H, int G, int D, int training, GLOBAL float* v,
                         GLOBAL const float* gain, GLOBAL const float* shift, GLOBAL float* xhat, GLOBAL float* rstd) {
    if (row >= rows) return;
    int g = row % G, d = (row / G) % D;
    int go = d * G * H + g * H;
    float r = recur_ln_row(v + row * H, H, gain + go, shift + go, training, xhat + (training ? row * H : 0));
    if (training) rstd[row] = r;
}

FN void ln_rows_bwd_body(int row, int rows, int H, int G, int D, GLOBAL const float* da, GLOBAL const float* gain,
                         GLOBAL const float* xhat, GLOBAL const float* rstd, GLOBAL float* dv) {
    if (row >= rows) return;
    int g = row % G, d = (row / G) % D;
    recur_ln_row_bwd(da + row * H, H, gain + d * G * H + g * H, xhat + row * H, rstd[row], dv + row * H);
}

FN void ln_step_fwd_body(int gi, int b, int d, int s, int T, int B, int H, int D, int G, int g0, int nblk, int training,
                         GLOBAL const int* lengths, GLOBAL float* v, GLOBAL const float* gain, GLOBAL const float* shift,
                         GLOBAL float* xhat, GLOBAL float* rstd) {
    if (gi >= nblk || b >= B || d >= D) return;
    int g = g0 + gi;
    int GH = G * H;
    int len = lengths[b];
    if (s >= len) {
        if (training) {
            for (int j = 0; j < H; j++) xhat[recur_tbd(s, b, d, B, D, GH, g * H + j)] = 0.0f;
            rstd[recur_tbd(s, b, d, B, D, G, g)] = 0.0f;
        }
        return;
    }
    int t = recur_time(s, d, len);
    float r = recur_ln_row(v + recur_dbw(d, b, B, GH, g * H), H, gain + d * GH + g * H, shift + d * GH + g * H,
                           training, xhat + (training ? recur_tbd(t, b, d, B, D, GH, g * H) : 0));
    if (training) rstd[recur_tbd(t, b, d, B, D, G, g)] = r;
}

FN void ln_step_bwd_body(int gi, int b, int d, int s, int T, int B, int H, int D, int G, int g0, int nblk,
                         GLOBAL const int* lengths, GLOBAL float* dg, GLOBAL const float* gain,
                         GLOBAL const float* xhat, GLOBAL const float* rstd, GLOBAL float* dvall) {
    if (gi >= nblk || b >= B || d >= D) return;
    int g = g0 + gi;
    int GH = G * H;
    int len = lengths[b];
    if (s >= len) {
        for (int j = 0; j < H; j++) dvall[recur_tbd(s, b, d, B, D, GH, g * H + j)] = 0.0f;
        return;
    }
    int t = recur_time(s, d, len);
    GLOBAL float* row = dg + recur_dbw(d, b, B, GH, g * H);
    int to = recur_tbd(t, b, d, B, D, GH, g * H);
    recur_ln_row_bwd(row, H, gain + d * GH + g * H, xhat + to, rstd[recur_tbd(t, b, d, B, D, G, g)], row);
    for (int j = 0; j < H; j++) dvall[to + j] = row[j];
}

FN void col_dot_body(int j, int M, int N, GLOBAL const float* a, GLOBAL const float* b, GLOBAL float* dst, float beta) {
    if (j >= N) return;
    float acc = 0.0f;
    for (int i = 0; i < M; i++) acc += a[i * N + j] * b[i * N + j];
    dst[j] = (beta == 0.0f ? 0.0f : beta * dst[j]) + acc;
}

#endif
