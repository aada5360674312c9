/* GRU cell with the reset gate applied after the recurrent matmul (PyTorch), one step of both directions.
 *   r = sig(xw_r + b_ir + hw_r + b_hr),  z = sig(xw_z + b_iz + hw_z + b_hz)
 *   hn = hw_n + b_hn,  n = tanh(xw_n + b_in + r*hn),  h_t = (1-z)*n + z*h_{t-1}
 *   (hw = W_hh h~_{t-1}, h~ the recurrent-dropout-masked state; z*h uses the unmasked h)
 * Saved: r, z, n, hn ([T,B,D,4H]).
 * Backward: dh = (s == len-1 ? dhN : dhrec*mask + ddir) + dy[t]
 *   dn_pre = dh*(1-z)*(1-n^2), dz_pre = dh*(h_{t-1} - n)*z(1-z), dr_pre = dn_pre*hn*r(1-r)
 *   input side (dgall):            [dr_pre, dz_pre, dn_pre]
 *   recurrent side (dgs, dgallh):  [dr_pre, dz_pre, dn_pre*r]
 *   ddir = dh*z (direct path to h_{t-1}; the GEMM dgs*W_hh gives the rest)
 * Grid {H, B, D}. */
#ifndef RECUR_GRU_H
#define RECUR_GRU_H
#include "step.h"

FN void gru_step_fwd_body(int j, int b, int d, int s, int T, int B, int H, int D, int training,
                          GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                          GLOBAL const float* bih, GLOBAL const float* bhh,
                          GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y, GLOBAL float* gsave,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int GH = 3 * H;
    int len = lengths[b];
    if (s >= len) {
        y[recur_tbd(s, b, d, B, D, H, j)] = 0.0f;
        if (training) {
            for (int k = 0; k < 4; k++) gsave[recur_tbd(s, b, d, B, D, 4 * H, k * H + j)] = 0.0f;
        }
        return;
    }
    int t = recur_time(s, d, len);
    int xo = recur_tbd(t, b, d, B, D, GH, j);
    int ho = recur_dbw(d, b, B, GH, j);
    int bo = d * GH + j;
    float r = recur_sigmoid(xw[xo] + hw[ho] + bih[bo] + bhh[bo]);
    float z = recur_sigmoid(xw[xo + H] + hw[ho + H] + bih[bo + H] + bhh[bo + H]);
    float hn = hw[ho + 2 * H] + bhh[bo + 2 * H];
    float n = recur_tanh(xw[xo + 2 * H] + bih[bo + 2 * H] + r * hn);
    int sh = recur_dbw(d, b, B, H, j);
    float hp = h[sh];
    float v = (1.0f - z) * n + z * hp;
    h[sh] = v;
    y[recur_tbd(t, b, d, B, D, H, j)] = v;
    if (thresh != 0) {
        hin[sh] = v * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * H + j, thresh, scale);
    }
    if (training) {
        int so = recur_tbd(t, b, d, B, D, 4 * H, j);
        gsave[so] = r;
        gsave[so + H] = z;
        gsave[so + 2 * H] = n;
        gsave[so + 3 * H] = hn;
    }
}

/* gru_step_fwd8: gru_step_fwd for 8 consecutive units per work item (grid {ceil(H/8), B, D}, the same
 * arguments); float8 on OpenCL for a full block of an active sequence (see lstm_step_fwd8), else the one-unit body. */
FN void gru_step_fwd8_body(int jc, int b, int d, int s, int T, int B, int H, int D, int training,
                           GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                           GLOBAL const float* bih, GLOBAL const float* bhh,
                           GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y, GLOBAL float* gsave,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    int j0 = jc * 8;
    if (j0 >= H || b >= B || d >= D) return;
#if defined(__OPENCL_VERSION__)
    int len = lengths[b];
    if (j0 + 8 <= H && s < len) {
        int GH = 3 * H;
        int t = recur_time(s, d, len);
        GLOBAL const float* xp = xw + recur_tbd(t, b, d, B, D, GH, j0);
        GLOBAL const float* hq = hw + recur_dbw(d, b, B, GH, j0);
        int bo = d * GH + j0;
        float8 r = recur_sigmoid8(vload8(0, xp) + vload8(0, hq) + vload8(0, bih + bo) + vload8(0, bhh + bo));
        float8 z = recur_sigmoid8(vload8(0, xp + H) + vload8(0, hq + H) + vload8(0, bih + bo + H)
                                  + vload8(0, bhh + bo + H));
        float8 hn = vload8(0, hq + 2 * H) + vload8(0, bhh + bo + 2 * H);
        float8 n = recur_tanh8(vload8(0, xp + 2 * H) + vload8(0, bih + bo + 2 * H) + r * hn);
        int sh = recur_dbw(d, b, B, H, j0);
        float8 v = (1.0f - z) * n + z * vload8(0, h + sh);
        vstore8(v, 0, h + sh);
        vstore8(v, 0, y + recur_tbd(t, b, d, B, D, H, j0));
        if (thresh != 0) {
            float vv[8];
            vstore8(v, 0, vv);
            for (int u = 0; u < 8; u++) {
                hin[sh + u] = vv[u] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT),
                                                 b * H + j0 + u, thresh, scale);
            }
        }
        if (training) {
            GLOBAL float* g = gsave + recur_tbd(t, b, d, B, D, 4 * H, j0);
            vstore8(r, 0, g);
            vstore8(z, 0, g + H);
            vstore8(n, 0, g + 2 * H);
            vstore8(hn, 0, g + 3 * H);
        }
        return;
    }
#endif
    for (int u = 0; u < 8; u++) {
        gru_step_fwd_body(j0 + u, b, d, s, T, B, H, D, training, lengths, xw, hw, bih, bhh, h, hin, y, gsave,
                          seed_lo, seed_hi, layer, thresh, scale);
    }
}

FN void gru_step_bwd_unit(int j, int b, int d, int s, int T, int B, int H, int D,
                          GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                          GLOBAL const float* dhrec, GLOBAL float* ddir, GLOBAL const float* gsave,
                          GLOBAL const float* y, GLOBAL const float* h0,
                          GLOBAL float* dgs, GLOBAL float* dgall, GLOBAL float* dgallh,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int GH = 3 * H;
    int len = lengths[b];
    int so = recur_dbw(d, b, B, GH, j);
    if (s >= len) {
        for (int k = 0; k < 3; k++) {
            int ao = recur_tbd(s, b, d, B, D, GH, k * H + j);
            dgs[so + k * H] = 0.0f;
            dgall[ao] = 0.0f;
            dgallh[ao] = 0.0f;
        }
        return;
    }
    int t = recur_time(s, d, len);
    int sh = recur_dbw(d, b, B, H, j);
    int th = recur_tbd(t, b, d, B, D, H, j);
    float dh = (s == len - 1 ? dhN[sh]
                             : dhrec[sh] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT),
                                                      b * H + j, thresh, scale) + ddir[sh])
               + dy[th];
    int go = recur_tbd(t, b, d, B, D, 4 * H, j);
    float r = gsave[go], z = gsave[go + H], n = gsave[go + 2 * H], hn = gsave[go + 3 * H];
    float hp = recur_is_first(t, d, len) ? h0[sh] : y[recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j)];
    float dn_pre = dh * (1.0f - z) * (1.0f - n * n);
    float dz_pre = dh * (hp - n) * z * (1.0f - z);
    float dr_pre = dn_pre * hn * r * (1.0f - r);
    ddir[sh] = dh * z;
    int ao = recur_tbd(t, b, d, B, D, GH, j);
    dgs[so] = dr_pre;
    dgs[so + H] = dz_pre;
    dgs[so + 2 * H] = dn_pre * r;
    dgall[ao] = dr_pre;
    dgall[ao + H] = dz_pre;
    dgall[ao + 2 * H] = dn_pre;
    dgallh[ao] = dr_pre;
    dgallh[ao + H] = dz_pre;
    dgallh[ao + 2 * H] = dn_pre * r;
}

/* gru_step_bwd: the one-unit body above, and on OpenCL the first work item of every 8 units runs all 8 as float8
 * vectors (the other 7 return; hosts round grids up to whole work-groups of 16 or 64, so every unit is covered):
 * PoCL runs the one-unit body one scalar work item at a time, 190 us per step at B = 32, H = 256. */
FN void gru_step_bwd_body(int j, int b, int d, int s, int T, int B, int H, int D,
                          GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                          GLOBAL const float* dhrec, GLOBAL float* ddir, GLOBAL const float* gsave,
                          GLOBAL const float* y, GLOBAL const float* h0,
                          GLOBAL float* dgs, GLOBAL float* dgall, GLOBAL float* dgallh,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
#if defined(__OPENCL_VERSION__)
    if (j >= H || b >= B || d >= D || (j & 7) != 0) return;
    int len = lengths[b];
    if (j + 8 <= H && s < len && thresh == 0) {
        int GH = 3 * H;
        int t = recur_time(s, d, len);
        int sh = recur_dbw(d, b, B, H, j);
        int th = recur_tbd(t, b, d, B, D, H, j);
        float8 dh = (s == len - 1 ? vload8(0, dhN + sh) : vload8(0, dhrec + sh) + vload8(0, ddir + sh))
                    + vload8(0, dy + th);
        GLOBAL const float* g = gsave + recur_tbd(t, b, d, B, D, 4 * H, j);
        float8 r = vload8(0, g), z = vload8(0, g + H), n = vload8(0, g + 2 * H), hn = vload8(0, g + 3 * H);
        float8 hp = recur_is_first(t, d, len) ? vload8(0, h0 + sh)
                                              : vload8(0, y + recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j));
        float8 dn_pre = dh * (1.0f - z) * (1.0f - n * n);
        float8 dz_pre = dh * (hp - n) * z * (1.0f - z);
        float8 dr_pre = dn_pre * hn * r * (1.0f - r);
        vstore8(dh * z, 0, ddir + sh);
        GLOBAL float* gs = dgs + recur_dbw(d, b, B, GH, j);
        int ao = recur_tbd(t, b, d, B, D, GH, j);
        vstore8(dr_pre, 0, gs);
        vstore8(dz_pre, 0, gs + H);
        vstore8(dn_pre * r, 0, gs + 2 * H);
        vstore8(dr_pre, 0, dgall + ao);
        vstore8(dz_pre, 0, dgall + ao + H);
        vstore8(dn_pre, 0, dgall + ao + 2 * H);
        vstore8(dr_pre, 0, dgallh + ao);
        vstore8(dz_pre, 0, dgallh + ao + H);
        vstore8(dn_pre * r, 0, dgallh + ao + 2 * H);
        return;
    }
    for (int u = j; u < j + 8 && u < H; u++) {
        gru_step_bwd_unit(u, b, d, s, T, B, H, D, lengths, dy, dhN, dhrec, ddir, gsave, y, h0, dgs, dgall, dgallh,
                          seed_lo, seed_hi, layer, thresh, scale);
    }
#else
    gru_step_bwd_unit(j, b, d, s, T, B, H, D, lengths, dy, dhN, dhrec, ddir, gsave, y, h0, dgs, dgall, dgallh,
                      seed_lo, seed_hi, layer, thresh, scale);
#endif
}

/* GRU with the reset gate applied BEFORE the recurrent matmul (Cho et al.): n = tanh(xw_n + b_in + W_hn (r*h~) + b_hn).
 * Forward per step: GEMM hw[:, r,z] = h~ W_h{r,z}^T; gru_before_gate_fwd -> r, z, rh = r*h~;
 *   GEMM hw[:, n] = rh W_hn^T; gru_before_step_fwd -> n, h_t. Saved: r, z, n, rh ([T,B,D,4H]).
 * Backward per step: gru_before_step_bwd -> dz_pre, dn_pre (and ddir = z*dh); GEMM drh = dn_pre W_hn;
 *   gru_before_reset_bwd -> dr_pre = drh*h~_{t-1}*r(1-r) and dhrec = drh*r, then the GEMM
 *   dhrec += [dr_pre, dz_pre] W_h{r,z} completes dh~_{t-1}. Input and recurrent sides share the gradients. */
FN void gru_before_gate_fwd_body(int j, int b, int d, int s, int T, int B, int H, int D,
                                 GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                                 GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL const float* hsrc,
                                 GLOBAL float* rz, GLOBAL float* rh) {
    if (j >= H || b >= B || d >= D) return;
    int len = lengths[b];
    int sh = recur_dbw(d, b, B, H, j);
    if (s >= len) {
        rh[sh] = 0.0f;
        return;
    }
    int GH = 3 * H;
    int t = recur_time(s, d, len);
    int xo = recur_tbd(t, b, d, B, D, GH, j);
    int ho = recur_dbw(d, b, B, GH, j);
    int bo = d * GH + j;
    float r = recur_sigmoid(xw[xo] + hw[ho] + bih[bo] + bhh[bo]);
    float z = recur_sigmoid(xw[xo + H] + hw[ho + H] + bih[bo + H] + bhh[bo + H]);
    int so = recur_dbw(d, b, B, 2 * H, j);
    rz[so] = r;
    rz[so + H] = z;
    rh[sh] = r * hsrc[sh];
}

FN void gru_before_step_fwd_body(int j, int b, int d, int s, int T, int B, int H, int D, int training,
                                 GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                                 GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL const float* rz,
                                 GLOBAL const float* rh, GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                                 GLOBAL float* gsave, int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int len = lengths[b];
    if (s >= len) {
        y[recur_tbd(s, b, d, B, D, H, j)] = 0.0f;
        if (training) {
            for (int k = 0; k < 4; k++) gsave[recur_tbd(s, b, d, B, D, 4 * H, k * H + j)] = 0.0f;
        }
        return;
    }
    int GH = 3 * H;
    int t = recur_time(s, d, len);
    int so = recur_dbw(d, b, B, 2 * H, j);
    float r = rz[so], z = rz[so + H];
    float n = recur_tanh(xw[recur_tbd(t, b, d, B, D, GH, 2 * H + j)] + bih[d * GH + 2 * H + j]
                         + hw[recur_dbw(d, b, B, GH, 2 * H + j)] + bhh[d * GH + 2 * H + j]);
    int sh = recur_dbw(d, b, B, H, j);
    float v = (1.0f - z) * n + z * h[sh];
    h[sh] = v;
    y[recur_tbd(t, b, d, B, D, H, j)] = v;
    if (thresh != 0) {
        hin[sh] = v * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * H + j, thresh, scale);
    }
    if (training) {
        int go = recur_tbd(t, b, d, B, D, 4 * H, j);
        gsave[go] = r;
        gsave[go + H] = z;
        gsave[go + 2 * H] = n;
        gsave[go + 3 * H] = rh[sh];
    }
}

FN void gru_before_step_bwd_body(int j, int b, int d, int s, int T, int B, int H, int D,
                                 GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                                 GLOBAL const float* dhrec, GLOBAL float* ddir, GLOBAL const float* gsave,
                                 GLOBAL const float* y, GLOBAL const float* h0, GLOBAL float* dgs, GLOBAL float* dgall,
                                 int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int GH = 3 * H;
    int len = lengths[b];
    int so = recur_dbw(d, b, B, GH, j);
    if (s >= len) {
        for (int k = 0; k < 3; k++) {
            dgs[so + k * H] = 0.0f;
            dgall[recur_tbd(s, b, d, B, D, GH, k * H + j)] = 0.0f;
        }
        return;
    }
    int t = recur_time(s, d, len);
    int sh = recur_dbw(d, b, B, H, j);
    float dh = (s == len - 1 ? dhN[sh]
                             : dhrec[sh] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT),
                                                      b * H + j, thresh, scale) + ddir[sh])
               + dy[recur_tbd(t, b, d, B, D, H, j)];
    int go = recur_tbd(t, b, d, B, D, 4 * H, j);
    float z = gsave[go + H], n = gsave[go + 2 * H];
    float hp = recur_is_first(t, d, len) ? h0[sh] : y[recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j)];
    float dn_pre = dh * (1.0f - z) * (1.0f - n * n);
    float dz_pre = dh * (hp - n) * z * (1.0f - z);
    ddir[sh] = dh * z;
    int ao = recur_tbd(t, b, d, B, D, GH, j);
    dgs[so + H] = dz_pre;
    dgs[so + 2 * H] = dn_pre;
    dgall[ao + H] = dz_pre;
    dgall[ao + 2 * H] = dn_pre;
}

FN void gru_before_reset_bwd_body(int j, int b, int d, int s, int T, int B, int H, int D,
                                  GLOBAL const int* lengths, GLOBAL const float* drh, GLOBAL const float* gsave,
                                  GLOBAL const float* y, GLOBAL const float* h0, GLOBAL float* dgs, GLOBAL float* dgall,
                                  GLOBAL float* dhrec, int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int GH = 3 * H;
    int len = lengths[b];
    int sh = recur_dbw(d, b, B, H, j);
    int so = recur_dbw(d, b, B, GH, j);
    if (s >= len) {
        dgs[so] = 0.0f;
        dhrec[sh] = 0.0f;
        return;
    }
    int t = recur_time(s, d, len);
    int go = recur_tbd(t, b, d, B, D, 4 * H, j);
    float r = gsave[go];
    float hp = recur_is_first(t, d, len) ? h0[sh] : y[recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j)];
    float hm = hp * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * H + j, thresh, scale);
    float g = drh[sh];
    float dr_pre = g * hm * r * (1.0f - r);
    dgs[so] = dr_pre;
    dgall[recur_tbd(t, b, d, B, D, GH, j)] = dr_pre;
    dhrec[sh] = g * r;
}

#endif
