/* Plain RNN cell (RNN_TANH act=0, RNN_RELU act=1), one time step of both directions.
 *   forward:  h_t = act(xw[t] + b_ih + hw + b_hh);  y[t,b,d] = h_t;  h state = h_t
 *   backward: dh = (s == len-1 ? dhN : dhrec) + dy[t];  dpre = dh * act'(h_t)
 *             (tanh: 1 - h_t^2, relu: h_t > 0) -> dgs (this step, by direction) and dgall (by time)
 * Grid {H, B, D}. */
#ifndef RECUR_RNN_H
#define RECUR_RNN_H
#include "step.h"

FN void rnn_step_fwd_body(int j, int b, int d, int s, int T, int B, int H, int D, int act,
                          GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                          GLOBAL const float* bih, GLOBAL const float* bhh,
                          GLOBAL float* h, GLOBAL float* y) {
    if (j >= H || b >= B || d >= D) return;
    int len = lengths[b];
    if (s >= len) {
        y[recur_tbd(s, b, d, B, D, H, j)] = 0.0f;
        return;
    }
    int t = recur_time(s, d, len);
    float pre = xw[recur_tbd(t, b, d, B, D, H, j)] + hw[recur_dbw(d, b, B, H, j)] + bih[d * H + j] + bhh[d * H + j];
    float v = act == 0 ? recur_tanh(pre) : (pre > 0.0f ? pre : 0.0f);
    h[recur_dbw(d, b, B, H, j)] = v;
    y[recur_tbd(t, b, d, B, D, H, j)] = v;
}

/* rnn_step_fwd8: rnn_step_fwd for 8 consecutive units per work item (grid {ceil(H/8), B, D}, the same arguments);
 * float8 on OpenCL for a full block of an active sequence, else the one-unit body. */
FN void rnn_step_fwd8_body(int jc, int b, int d, int s, int T, int B, int H, int D, int act,
                           GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                           GLOBAL const float* bih, GLOBAL const float* bhh,
                           GLOBAL float* h, GLOBAL float* y) {
    int j0 = jc * 8;
    if (j0 >= H || b >= B || d >= D) return;
#if defined(__OPENCL_VERSION__)
    int len = lengths[b];
    if (j0 + 8 <= H && s < len) {
        int t = recur_time(s, d, len);
        int sh = recur_dbw(d, b, B, H, j0);
        float8 pre = vload8(0, xw + recur_tbd(t, b, d, B, D, H, j0)) + vload8(0, hw + sh) + vload8(0, bih + d * H + j0)
                     + vload8(0, bhh + d * H + j0);
        float8 v = act == 0 ? recur_tanh8(pre) : fmax(pre, 0.0f);
        vstore8(v, 0, h + sh);
        vstore8(v, 0, y + recur_tbd(t, b, d, B, D, H, j0));
        return;
    }
#endif
    for (int u = 0; u < 8; u++) rnn_step_fwd_body(j0 + u, b, d, s, T, B, H, D, act, lengths, xw, hw, bih, bhh, h, y);
}

FN void rnn_step_bwd_unit(int j, int b, int d, int s, int T, int B, int H, int D, int act,
                          GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                          GLOBAL const float* dhrec, GLOBAL const float* y,
                          GLOBAL float* dgs, GLOBAL float* dgall) {
    if (j >= H || b >= B || d >= D) return;
    int len = lengths[b];
    if (s >= len) {
        dgs[recur_dbw(d, b, B, H, j)] = 0.0f;
        dgall[recur_tbd(s, b, d, B, D, H, j)] = 0.0f;
        return;
    }
    int t = recur_time(s, d, len);
    int sd = recur_dbw(d, b, B, H, j);
    int td = recur_tbd(t, b, d, B, D, H, j);
    float dh = (s == len - 1 ? dhN[sd] : dhrec[sd]) + dy[td];
    float v = y[td];
    float dpre = act == 0 ? dh * (1.0f - v * v) : (v > 0.0f ? dh : 0.0f);
    dgs[sd] = dpre;
    dgall[td] = dpre;
}

/* rnn_step_bwd: the one-unit body above, and on OpenCL the first work item of every 8 units runs all 8 as float8
 * vectors (the other 7 return; hosts round grids up to whole work-groups of 16 or 64, so every unit is covered). */
FN void rnn_step_bwd_body(int j, int b, int d, int s, int T, int B, int H, int D, int act,
                          GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                          GLOBAL const float* dhrec, GLOBAL const float* y,
                          GLOBAL float* dgs, GLOBAL float* dgall) {
#if defined(__OPENCL_VERSION__)
    if (j >= H || b >= B || d >= D || (j & 7) != 0) return;
    int len = lengths[b];
    if (j + 8 <= H && s < len) {
        int t = recur_time(s, d, len);
        int sd = recur_dbw(d, b, B, H, j);
        int td = recur_tbd(t, b, d, B, D, H, j);
        float8 dh = (s == len - 1 ? vload8(0, dhN + sd) : vload8(0, dhrec + sd)) + vload8(0, dy + td);
        float8 v = vload8(0, y + td);
        float8 dpre = act == 0 ? dh * (1.0f - v * v) : select((float8) 0.0f, dh, v > 0.0f);
        vstore8(dpre, 0, dgs + sd);
        vstore8(dpre, 0, dgall + td);
        return;
    }
    for (int u = j; u < j + 8 && u < H; u++) rnn_step_bwd_unit(u, b, d, s, T, B, H, D, act, lengths, dy, dhN, dhrec, y, dgs, dgall);
#else
    rnn_step_bwd_unit(j, b, d, s, T, B, H, D, act, lengths, dy, dhN, dhrec, y, dgs, dgall);
#endif
}

#endif
