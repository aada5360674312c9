/* Persistent (whole-sequence) forward of one layer in ONE work-group: the latency case (small batch), where
 * the per-step GEMM and pointwise launches cost more than their arithmetic. For s = 0..T-1:
 *   hw[d,b,:] = hsrc[d,b,:] W_hh[d]^T     (hsrc = h, or hin = h * recurrent mask when thresh != 0)
 *   then the cell's own step body (lstm.h / gru.h / rnn.h, the same code as the per-step kernels, 8 units at a
 *   time) for every (j, b, d), both directions, with variable lengths,
 * separated by work-group barriers. Only one work-group exists, so the barrier is a device-wide step barrier:
 * no inter-work-group synchronisation is needed (OpenCL, PoCL included, guarantees none).
 * The recurrent weights are streamed from global memory every step rather than copied to local memory: on a
 * CPU device (PoCL) local memory is ordinary cached memory, and whhT (at most a few hundred KiB at the sizes
 * the schedule sends here) stays in L2 across steps; each weight read is reused for up to 4 batch rows.
 * Layouts as in dev.recur.backend.Kernels: xw [T,B,D,GH], whhT [D,P,GH], hw [D,B,GH] scratch, h/hin [D,B,P].
 * Launch shape: grid {L} run as exactly one work-group of L work items (any L >= 1). */
#ifndef RECUR_PERSIST_H
#define RECUR_PERSIST_H
#include "lstm.h"
#include "gru.h"
#include "rnn.h"

/* hw = hsrc W^T for all D*B rows, rows in blocks of 4 so that each weight load feeds 4 multiply-adds (rows past
 * B repeat the last row and are not stored: no branch in the inner loop).
 * OpenCL (a CPU device such as PoCL runs the work-group's items one after another on one core): a work item owns
 * 16 adjacent columns as two float8 vectors, so each k reads one 64-byte line of W^T, explicitly vectorised.
 * CUDA: a thread owns single columns, so a warp reads 32 adjacent weights (coalesced). */
FN void recur_persist_cols(int d, int n, int B, int P, int GH, GLOBAL const float* hsrc, GLOBAL const float* whhT,
                           GLOBAL float* hw) {
    GLOBAL const float* w = whhT + (d * P) * GH + n;
    for (int b0 = 0; b0 < B; b0 += 4) {
        int r1 = b0 + 1 < B ? b0 + 1 : B - 1, r2 = b0 + 2 < B ? b0 + 2 : B - 1, r3 = b0 + 3 < B ? b0 + 3 : B - 1;
        GLOBAL const float* h0 = hsrc + (d * B + b0) * P;
        GLOBAL const float* h1 = hsrc + (d * B + r1) * P;
        GLOBAL const float* h2 = hsrc + (d * B + r2) * P;
        GLOBAL const float* h3 = hsrc + (d * B + r3) * P;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (int k = 0; k < P; k++) {
            float wv = w[k * GH];
            a0 += h0[k] * wv;
            a1 += h1[k] * wv;
            a2 += h2[k] * wv;
            a3 += h3[k] * wv;
        }
        GLOBAL float* o = hw + (d * B + b0) * GH + n;
        o[0] = a0;
        if (b0 + 1 < B) o[GH] = a1;
        if (b0 + 2 < B) o[2 * GH] = a2;
        if (b0 + 3 < B) o[3 * GH] = a3;
    }
}

#if defined(__OPENCL_VERSION__)
FN void recur_persist_gemm(int lid, int L, int B, int D, int P, int GH, GLOBAL const float* hsrc,
                           GLOBAL const float* whhT, GLOBAL float* hw) {
    int chunks = (GH + 15) / 16;
    for (int ch = lid; ch < D * chunks; ch += L) {
        int d = ch / chunks, n0 = (ch - d * chunks) * 16;
        if (n0 + 16 > GH) {
            for (int n = n0; n < GH; n++) recur_persist_cols(d, n, B, P, GH, hsrc, whhT, hw);
            continue;
        }
        GLOBAL const float* w = whhT + (d * P) * GH + n0;
        for (int b0 = 0; b0 < B; b0 += 4) {
            int r1 = b0 + 1 < B ? b0 + 1 : B - 1, r2 = b0 + 2 < B ? b0 + 2 : B - 1, r3 = b0 + 3 < B ? b0 + 3 : B - 1;
            GLOBAL const float* h0 = hsrc + (d * B + b0) * P;
            GLOBAL const float* h1 = hsrc + (d * B + r1) * P;
            GLOBAL const float* h2 = hsrc + (d * B + r2) * P;
            GLOBAL const float* h3 = hsrc + (d * B + r3) * P;
            float8 c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;
            for (int k = 0; k < P; k++) {
                float8 w0 = vload8(0, w + k * GH), w1 = vload8(1, w + k * GH);
                float x0 = h0[k], x1 = h1[k], x2 = h2[k], x3 = h3[k];
                c00 += x0 * w0; c01 += x0 * w1;
                c10 += x1 * w0; c11 += x1 * w1;
                c20 += x2 * w0; c21 += x2 * w1;
                c30 += x3 * w0; c31 += x3 * w1;
            }
            GLOBAL float* o = hw + (d * B + b0) * GH + n0;
            vstore8(c00, 0, o); vstore8(c01, 1, o);
            if (b0 + 1 < B) { vstore8(c10, 0, o + GH); vstore8(c11, 1, o + GH); }
            if (b0 + 2 < B) { vstore8(c20, 0, o + 2 * GH); vstore8(c21, 1, o + 2 * GH); }
            if (b0 + 3 < B) { vstore8(c30, 0, o + 3 * GH); vstore8(c31, 1, o + 3 * GH); }
        }
    }
}
#else
FN void recur_persist_gemm(int lid, int L, int B, int D, int P, int GH, GLOBAL const float* hsrc,
                           GLOBAL const float* whhT, GLOBAL float* hw) {
    for (int col = lid; col < D * GH; col += L) {
        int d = col / GH;
        recur_persist_cols(d, col - d * GH, B, P, GH, hsrc, whhT, hw);
    }
}
#endif

FN void lstm_seq_fwd_body(int lid, int L, int T, int B, int H, int D, int peep, int coupled, int training,
                          GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* whhT,
                          GLOBAL float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                          GLOBAL const float* peepw, GLOBAL float* c, GLOBAL float* h, GLOBAL float* hin,
                          GLOBAL float* y, GLOBAL float* gsave, GLOBAL float* csave,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    int GH = (coupled ? 3 : 4) * H;
    GLOBAL const float* hsrc = thresh != 0 ? hin : h;
    for (int s = 0; s < T; s++) {
        recur_persist_gemm(lid, L, B, D, H, GH, hsrc, whhT, hw);
        BARRIER_ALL();
        int HC = (H + 7) / 8;
        for (int e = lid; e < D * B * HC; e += L) {
            int j = e % HC, bd = e / HC;
            /* no projection here: mout/msave are never touched (proj = 0), csave stands in for both */
            lstm_step_fwd8_body(j, bd % B, bd / B, s, T, B, H, D, H, 0, peep, coupled, training, lengths, xw, hw, bih,
                               bhh, peepw, c, h, hin, y, gsave, csave, csave, csave, seed_lo, seed_hi, layer, thresh,
                               scale);
        }
        BARRIER_ALL();
    }
}

FN void gru_seq_fwd_body(int lid, int L, int T, int B, int H, int D, int training,
                         GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* whhT,
                         GLOBAL float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                         GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y, GLOBAL float* gsave,
                         int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    GLOBAL const float* hsrc = thresh != 0 ? hin : h;
    for (int s = 0; s < T; s++) {
        recur_persist_gemm(lid, L, B, D, H, 3 * H, hsrc, whhT, hw);
        BARRIER_ALL();
        int HC = (H + 7) / 8;
        for (int e = lid; e < D * B * HC; e += L) {
            int j = e % HC, bd = e / HC;
            gru_step_fwd8_body(j, bd % B, bd / B, s, T, B, H, D, training, lengths, xw, hw, bih, bhh, h, hin, y, gsave,
                              seed_lo, seed_hi, layer, thresh, scale);
        }
        BARRIER_ALL();
    }
}

FN void rnn_seq_fwd_body(int lid, int L, int T, int B, int H, int D, int act,
                         GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* whhT,
                         GLOBAL float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                         GLOBAL float* h, GLOBAL float* y) {
    for (int s = 0; s < T; s++) {
        recur_persist_gemm(lid, L, B, D, H, H, h, whhT, hw);
        BARRIER_ALL();
        int HC = (H + 7) / 8;
        for (int e = lid; e < D * B * HC; e += L) {
            int j = e % HC, bd = e / HC;
            rnn_step_fwd8_body(j, bd % B, bd / B, s, T, B, H, D, act, lengths, xw, hw, bih, bhh, h, y);
        }
        BARRIER_ALL();
    }
}

#endif
