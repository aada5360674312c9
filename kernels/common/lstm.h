/* LSTM cell, one time step of both directions (gate blocks i,f,g,o; coupled: i,g,o with f = 1-i).
 *   pre_k = xw[t,b,d,k] + hw[d,b,k] + b_ih[d,k] + b_hh[d,k]
 *   i = sig(pre_i + w_ci*c_{t-1}), f = sig(pre_f + w_cf*c_{t-1}) (coupled: 1-i), g = tanh(pre_g)
 *   c_t = f*c_{t-1} + i*g,  o = sig(pre_o + w_co*c_t),  m = o*tanh(c_t)
 *   without projection h_t = m; with projection h_t = W_hr m (a GEMM, then lstm_proj_fwd)
 * Backward (dh the gradient on m, dc_in = dc_t from later steps or dcN):
 *   do = dh*tanh(c_t); do_pre = do*o(1-o)
 *   dc = dc_in + dh*o*(1-tanh^2 c_t) + w_co*do_pre
 *   di = dc*g (coupled: dc*(g - c_{t-1})), df = dc*c_{t-1}, dg = dc*i
 *   di_pre = di*i(1-i), df_pre = df*f(1-f), dg_pre = dg*(1-g^2)
 *   dc_{t-1} = dc*f + w_ci*di_pre + w_cf*df_pre
 * Grid {H, B, D} for the step kernels, {P, B, D} for the projection kernels, {H, D} for peephole_grad. */
#ifndef RECUR_LSTM_H
#define RECUR_LSTM_H
#include "step.h"

FN void lstm_step_fwd_body(int j, int b, int d, int s, int T, int B, int H, int D, int P,
                           int proj, int peep, int coupled, int training,
                           GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                           GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL const float* peepw,
                           GLOBAL float* c, GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                           GLOBAL float* gsave, GLOBAL float* csave, GLOBAL float* mout, GLOBAL float* msave,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int G = coupled ? 3 : 4;
    int GH = G * H;
    int len = lengths[b];
    if (s >= len) {
        if (!proj) y[recur_tbd(s, b, d, B, D, P, j)] = 0.0f;
        if (training) {
            for (int k = 0; k < G; k++) gsave[recur_tbd(s, b, d, B, D, GH, k * H + j)] = 0.0f;
            csave[recur_tbd(s, b, d, B, D, H, j)] = 0.0f;
            if (proj) msave[recur_tbd(s, b, d, B, D, H, j)] = 0.0f;
        }
        return;
    }
    int t = recur_time(s, d, len);
    int xo = recur_tbd(t, b, d, B, D, GH, j);
    int ho = recur_dbw(d, b, B, GH, j);
    int bo = d * GH + j;
    int bi = 0, bf = H, bg = coupled ? H : 2 * H, bo_ = coupled ? 2 * H : 3 * H;
    float cp = c[recur_dbw(d, b, B, H, j)];
    float wci = peep ? peepw[(d * 3 + 0) * H + j] : 0.0f;
    float wcf = peep ? peepw[(d * 3 + 1) * H + j] : 0.0f;
    float wco = peep ? peepw[(d * 3 + 2) * H + j] : 0.0f;
    float ig = recur_sigmoid(xw[xo + bi] + hw[ho + bi] + bih[bo + bi] + bhh[bo + bi] + wci * cp);
    float fg = coupled ? 1.0f - ig
                       : recur_sigmoid(xw[xo + bf] + hw[ho + bf] + bih[bo + bf] + bhh[bo + bf] + wcf * cp);
    float gg = recur_tanh(xw[xo + bg] + hw[ho + bg] + bih[bo + bg] + bhh[bo + bg]);
    float cn = fg * cp + ig * gg;
    float og = recur_sigmoid(xw[xo + bo_] + hw[ho + bo_] + bih[bo + bo_] + bhh[bo + bo_] + wco * cn);
    float m = og * recur_tanh(cn);
    c[recur_dbw(d, b, B, H, j)] = cn;
    if (training) {
        int so = recur_tbd(t, b, d, B, D, GH, j);
        gsave[so + bi] = ig;
        if (!coupled) gsave[so + bf] = fg;
        gsave[so + bg] = gg;
        gsave[so + bo_] = og;
        csave[recur_tbd(t, b, d, B, D, H, j)] = cn;
    }
    if (proj) {
        mout[recur_dbw(d, b, B, H, j)] = m;
        if (training) msave[recur_tbd(t, b, d, B, D, H, j)] = m;
    } else {
        h[recur_dbw(d, b, B, H, j)] = m;
        y[recur_tbd(t, b, d, B, D, H, j)] = m;
        if (thresh != 0) {
            hin[recur_dbw(d, b, B, H, j)] =
                m * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * H + j, thresh, scale);
        }
    }
}


/* lstm_step_fwd8: lstm_step_fwd for 8 consecutive units j = 8*jc .. 8*jc+7 per work item (grid {ceil(H/8), B, D},
 * the same arguments). On OpenCL a full block of an active sequence without projection runs as float8 vectors:
 * PoCL does not vectorise the one-unit kernel across work items (its branches), and the scalar gate math cost
 * as much CPU as the step's recurrent GEMM. Everything else (and CUDA) runs the one-unit body 8 times. */
FN void lstm_step_fwd8_body(int jc, int b, int d, int s, int T, int B, int H, int D, int P,
                            int proj, int peep, int coupled, int training,
                            GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                            GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL const float* peepw,
                            GLOBAL float* c, GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                            GLOBAL float* gsave, GLOBAL float* csave, GLOBAL float* mout, GLOBAL float* msave,
                            int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    int j0 = jc * 8;
    if (j0 >= H || b >= B || d >= D) return;
#if defined(__OPENCL_VERSION__)
    int len = lengths[b];
    if (j0 + 8 <= H && !proj && s < len) {
        int GH = (coupled ? 3 : 4) * H;
        int t = recur_time(s, d, len);
        GLOBAL const float* xp = xw + recur_tbd(t, b, d, B, D, GH, j0);
        GLOBAL const float* hp = hw + recur_dbw(d, b, B, GH, j0);
        int bo = d * GH + j0;
        int bi = 0, bf = H, bg = coupled ? H : 2 * H, bo_ = coupled ? 2 * H : 3 * H;
        int sc = recur_dbw(d, b, B, H, j0);
        float8 cp = vload8(0, c + sc);
        float8 wci = 0.0f, wcf = 0.0f, wco = 0.0f;
        if (peep) {
            wci = vload8(0, peepw + (d * 3 + 0) * H + j0);
            wcf = vload8(0, peepw + (d * 3 + 1) * H + j0);
            wco = vload8(0, peepw + (d * 3 + 2) * H + j0);
        }
        float8 ig = recur_sigmoid8(vload8(0, xp + bi) + vload8(0, hp + bi) + vload8(0, bih + bo + bi)
                                   + vload8(0, bhh + bo + bi) + wci * cp);
        float8 fg;
        if (coupled) fg = 1.0f - ig;
        else fg = recur_sigmoid8(vload8(0, xp + bf) + vload8(0, hp + bf) + vload8(0, bih + bo + bf)
                                 + vload8(0, bhh + bo + bf) + wcf * cp);
        float8 gg = recur_tanh8(vload8(0, xp + bg) + vload8(0, hp + bg) + vload8(0, bih + bo + bg)
                                + vload8(0, bhh + bo + bg));
        float8 cn = fg * cp + ig * gg;
        float8 og = recur_sigmoid8(vload8(0, xp + bo_) + vload8(0, hp + bo_) + vload8(0, bih + bo + bo_)
                                   + vload8(0, bhh + bo + bo_) + wco * cn);
        float8 m = og * recur_tanh8(cn);
        vstore8(cn, 0, c + sc);
        if (training) {
            GLOBAL float* g = gsave + recur_tbd(t, b, d, B, D, GH, j0);
            vstore8(ig, 0, g + bi);
            if (!coupled) vstore8(fg, 0, g + bf);
            vstore8(gg, 0, g + bg);
            vstore8(og, 0, g + bo_);
            vstore8(cn, 0, csave + recur_tbd(t, b, d, B, D, H, j0));
        }
        vstore8(m, 0, h + sc);
        vstore8(m, 0, y + recur_tbd(t, b, d, B, D, H, j0));
        if (thresh != 0) {
            float mv[8];
            vstore8(m, 0, mv);
            for (int u = 0; u < 8; u++) {
                hin[sc + u] = mv[u] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT),
                                                 b * H + j0 + u, thresh, scale);
            }
        }
        return;
    }
#endif
    for (int u = 0; u < 8; u++) {
        lstm_step_fwd_body(j0 + u, b, d, s, T, B, H, D, P, proj, peep, coupled, training, lengths, xw, hw, bih, bhh,
                           peepw, c, h, hin, y, gsave, csave, mout, msave, seed_lo, seed_hi, layer, thresh, scale);
    }
}

FN void lstm_step_bwd_body(int j, int b, int d, int s, int T, int B, int H, int D, int P,
                           int proj, int peep, int coupled,
                           GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                           GLOBAL const float* dhrec, GLOBAL const float* dm, GLOBAL const float* dcN,
                           GLOBAL float* dc, GLOBAL const float* gsave, GLOBAL const float* csave,
                           GLOBAL const float* c0, GLOBAL const float* peepw,
                           GLOBAL float* dgs, GLOBAL float* dgall,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= H || b >= B || d >= D) return;
    int G = coupled ? 3 : 4;
    int GH = G * H;
    int len = lengths[b];
    int so = recur_dbw(d, b, B, GH, j);
    if (s >= len) {
        for (int k = 0; k < G; k++) {
            dgs[so + k * H] = 0.0f;
            dgall[recur_tbd(s, b, d, B, D, GH, k * H + j)] = 0.0f;
        }
        return;
    }
    int t = recur_time(s, d, len);
    int sh = recur_dbw(d, b, B, H, j);
    float dh;
    if (proj) {
        dh = dm[sh];
    } else {
        int sp = recur_dbw(d, b, B, P, j);
        dh = (s == len - 1 ? dhN[sp]
                           : dhrec[sp] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT),
                                                    b * P + j, thresh, scale))
             + dy[recur_tbd(t, b, d, B, D, P, j)];
    }
    float dcin = s == len - 1 ? dcN[sh] : dc[sh];
    float cp = recur_is_first(t, d, len) ? c0[sh] : csave[recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j)];
    float cn = csave[recur_tbd(t, b, d, B, D, H, j)];
    int go = recur_tbd(t, b, d, B, D, GH, j);
    int bi = 0, bf = H, bg = coupled ? H : 2 * H, bo_ = coupled ? 2 * H : 3 * H;
    float ig = gsave[go + bi];
    float fg = coupled ? 1.0f - ig : gsave[go + bf];
    float gg = gsave[go + bg];
    float og = gsave[go + bo_];
    float wci = peep ? peepw[(d * 3 + 0) * H + j] : 0.0f;
    float wcf = peep ? peepw[(d * 3 + 1) * H + j] : 0.0f;
    float wco = peep ? peepw[(d * 3 + 2) * H + j] : 0.0f;
    float tc = recur_tanh(cn);
    float do_pre = dh * tc * og * (1.0f - og);
    float dcn = dcin + dh * og * (1.0f - tc * tc) + wco * do_pre;
    float di = coupled ? dcn * (gg - cp) : dcn * gg;
    float di_pre = di * ig * (1.0f - ig);
    float df_pre = coupled ? 0.0f : dcn * cp * fg * (1.0f - fg);
    float dg_pre = dcn * ig * (1.0f - gg * gg);
    dc[sh] = dcn * fg + wci * di_pre + wcf * df_pre;
    dgs[so + bi] = di_pre;
    dgall[go + bi] = di_pre;
    if (!coupled) {
        dgs[so + bf] = df_pre;
        dgall[go + bf] = df_pre;
    }
    dgs[so + bg] = dg_pre;
    dgall[go + bg] = dg_pre;
    dgs[so + bo_] = do_pre;
    dgall[go + bo_] = do_pre;
}

/* lstm_step_bwd8: lstm_step_bwd for 8 consecutive units per work item (grid {ceil(H/8), B, D}, the same
 * arguments); float8 on OpenCL for a full block of an active sequence without projection, else the one-unit body. */
FN void lstm_step_bwd8_body(int jc, int b, int d, int s, int T, int B, int H, int D, int P,
                            int proj, int peep, int coupled,
                            GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                            GLOBAL const float* dhrec, GLOBAL const float* dm, GLOBAL const float* dcN,
                            GLOBAL float* dc, GLOBAL const float* gsave, GLOBAL const float* csave,
                            GLOBAL const float* c0, GLOBAL const float* peepw,
                            GLOBAL float* dgs, GLOBAL float* dgall,
                            int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    int j0 = jc * 8;
    if (j0 >= H || b >= B || d >= D) return;
#if defined(__OPENCL_VERSION__)
    int len = lengths[b];
    if (j0 + 8 <= H && !proj && s < len) {
        int GH = (coupled ? 3 : 4) * H;
        int t = recur_time(s, d, len);
        int sh = recur_dbw(d, b, B, H, j0);
        int so = recur_dbw(d, b, B, GH, j0);
        float8 dh;
        if (s == len - 1) {
            dh = vload8(0, dhN + sh);
        } else {
            dh = vload8(0, dhrec + sh);
            if (thresh != 0) {
                float mk[8];
                for (int u = 0; u < 8; u++) {
                    mk[u] = recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * P + j0 + u,
                                       thresh, scale);
                }
                dh *= vload8(0, mk);
            }
        }
        dh += vload8(0, dy + recur_tbd(t, b, d, B, D, P, j0));
        float8 dcin = s == len - 1 ? vload8(0, dcN + sh) : vload8(0, dc + sh);
        float8 cp = recur_is_first(t, d, len) ? vload8(0, c0 + sh)
                                              : vload8(0, csave + recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j0));
        float8 cn = vload8(0, csave + recur_tbd(t, b, d, B, D, H, j0));
        int go = recur_tbd(t, b, d, B, D, GH, j0);
        int bi = 0, bf = H, bg = coupled ? H : 2 * H, bo_ = coupled ? 2 * H : 3 * H;
        float8 ig = vload8(0, gsave + go + bi);
        float8 fg = coupled ? 1.0f - ig : vload8(0, gsave + go + bf);
        float8 gg = vload8(0, gsave + go + bg);
        float8 og = vload8(0, gsave + go + bo_);
        float8 wci = 0.0f, wcf = 0.0f, wco = 0.0f;
        if (peep) {
            wci = vload8(0, peepw + (d * 3 + 0) * H + j0);
            wcf = vload8(0, peepw + (d * 3 + 1) * H + j0);
            wco = vload8(0, peepw + (d * 3 + 2) * H + j0);
        }
        float8 tc = recur_tanh8(cn);
        float8 do_pre = dh * tc * og * (1.0f - og);
        float8 dcn = dcin + dh * og * (1.0f - tc * tc) + wco * do_pre;
        float8 di = coupled ? dcn * (gg - cp) : dcn * gg;
        float8 di_pre = di * ig * (1.0f - ig);
        float8 df_pre = coupled ? (float8) 0.0f : dcn * cp * fg * (1.0f - fg);
        float8 dg_pre = dcn * ig * (1.0f - gg * gg);
        vstore8(dcn * fg + wci * di_pre + wcf * df_pre, 0, dc + sh);
        vstore8(di_pre, 0, dgs + so + bi);
        vstore8(di_pre, 0, dgall + go + bi);
        if (!coupled) {
            vstore8(df_pre, 0, dgs + so + bf);
            vstore8(df_pre, 0, dgall + go + bf);
        }
        vstore8(dg_pre, 0, dgs + so + bg);
        vstore8(dg_pre, 0, dgall + go + bg);
        vstore8(do_pre, 0, dgs + so + bo_);
        vstore8(do_pre, 0, dgall + go + bo_);
        return;
    }
#endif
    for (int u = 0; u < 8; u++) {
        lstm_step_bwd_body(j0 + u, b, d, s, T, B, H, D, P, proj, peep, coupled, lengths, dy, dhN, dhrec, dm, dcN, dc,
                           gsave, csave, c0, peepw, dgs, dgall, seed_lo, seed_hi, layer, thresh, scale);
    }
}

/* h_t = hp (= W_hr m of this step) for active sequences; y[s] = 0 at padded positions. */
FN void lstm_proj_fwd_body(int j, int b, int d, int s, int T, int B, int P, int D,
                           GLOBAL const int* lengths, GLOBAL const float* hp, GLOBAL float* h,
                           GLOBAL float* hin, GLOBAL float* y,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= P || b >= B || d >= D) return;
    int len = lengths[b];
    if (s >= len) {
        y[recur_tbd(s, b, d, B, D, P, j)] = 0.0f;
        return;
    }
    int t = recur_time(s, d, len);
    int sp = recur_dbw(d, b, B, P, j);
    float v = hp[sp];
    h[sp] = v;
    y[recur_tbd(t, b, d, B, D, P, j)] = v;
    if (thresh != 0) {
        hin[sp] = v * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT), b * P + j, thresh, scale);
    }
}

/* dht = total gradient on h_t of this step (0 for inactive sequences), also stored by time in dhtall. */
FN void lstm_proj_bwd_body(int j, int b, int d, int s, int T, int B, int P, int D,
                           GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                           GLOBAL const float* dhrec, GLOBAL float* dht, GLOBAL float* dhtall,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    if (j >= P || b >= B || d >= D) return;
    int len = lengths[b];
    int sp = recur_dbw(d, b, B, P, j);
    if (s >= len) {
        dht[sp] = 0.0f;
        dhtall[recur_tbd(s, b, d, B, D, P, j)] = 0.0f;
        return;
    }
    int t = recur_time(s, d, len);
    int tp = recur_tbd(t, b, d, B, D, P, j);
    float v = (s == len - 1 ? dhN[sp]
                            : dhrec[sp] * recur_mask(seed_lo, seed_hi, recur_stream(layer, d, RECUR_DROP_RECURRENT),
                                                     b * P + j, thresh, scale))
              + dy[tp];
    dht[sp] = v;
    dhtall[tp] = v;
}

/* dw_ci = sum dI_pre*c_{t-1}, dw_cf = sum dF_pre*c_{t-1}, dw_co = sum dO_pre*c_t over active (t, b). */
FN void lstm_peephole_grad_body(int j, int d, int T, int B, int H, int D, int G, int coupled,
                                GLOBAL const int* lengths, GLOBAL const float* dgall, GLOBAL const float* csave,
                                GLOBAL const float* c0, GLOBAL float* dst) {
    if (j >= H || d >= D) return;
    int GH = G * H;
    int bf = H, bo_ = coupled ? 2 * H : 3 * H;
    float si = 0.0f, sf = 0.0f, so = 0.0f;
    for (int b = 0; b < B; b++) {
        int len = lengths[b];
        for (int t = 0; t < len; t++) {
            float cp = recur_is_first(t, d, len) ? c0[recur_dbw(d, b, B, H, j)]
                                                 : csave[recur_tbd(recur_prev_time(t, d), b, d, B, D, H, j)];
            float cn = csave[recur_tbd(t, b, d, B, D, H, j)];
            int go = recur_tbd(t, b, d, B, D, GH, j);
            si += dgall[go] * cp;
            if (!coupled) sf += dgall[go + bf] * cp;
            so += dgall[go + bo_] * cn;
        }
    }
    dst[(d * 3 + 0) * H + j] = si;
    dst[(d * 3 + 1) * H + j] = sf;
    dst[(d * 3 + 2) * H + j] = so;
}

#endif
