/* gru_step_fwd / gru_step_bwd: one time step of a GRU layer (reset gate after the recurrent matmul, as
 * PyTorch), both directions per launch.
 *   forward   r,z = sig(.), n = tanh(xw_n + b_in + r*(W_hn h~ + b_hn)), h_t = (1-z) n + z h_{t-1}
 *   backward  input-side [dr, dz, dn] and recurrent-side [dr, dz, dn*r] pre-activation gradients,
 *             ddir = z*dh (the direct path to h_{t-1}); see kernels/common/gru.h
 * Launch: grid {H, B, D}. */
#include "common/gru.h"

KERNEL void gru_step_fwd(int s, int T, int B, int H, int D, int training, GLOBAL const int* lengths,
                         GLOBAL const float* xw, GLOBAL const float* hw, GLOBAL const float* bih,
                         GLOBAL const float* bhh, GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                         GLOBAL float* gsave, int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_step_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, training, lengths, xw, hw, bih, bhh,
                      h, hin, y, gsave, seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void gru_step_bwd(int s, int T, int B, int H, int D, GLOBAL const int* lengths, GLOBAL const float* dy,
                         GLOBAL const float* dhN, GLOBAL const float* dhrec, GLOBAL float* ddir,
                         GLOBAL const float* gsave, GLOBAL const float* y, GLOBAL const float* h0,
                         GLOBAL float* dgs, GLOBAL float* dgall, GLOBAL float* dgallh,
                         int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_step_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, lengths, dy, dhN, dhrec, ddir, gsave,
                      y, h0, dgs, dgall, dgallh, seed_lo, seed_hi, layer, thresh, scale);
}

/* Reset-before GRU (kernels/common/gru.h): n = tanh(xw_n + b_in + W_hn (r*h~) + b_hn).
 *   gru_before_gate_fwd   r, z and rh = r*h~ after the r,z GEMM          grid {H, B, D}
 *   gru_before_step_fwd   n and h_t after the W_hn (rh) GEMM            grid {H, B, D}
 *   gru_before_step_bwd   dz_pre, dn_pre, ddir = z*dh                   grid {H, B, D}
 *   gru_before_reset_bwd  dr_pre = drh*h~*r(1-r), dhrec = drh*r         grid {H, B, D} */
KERNEL void gru_before_gate_fwd(int s, int T, int B, int H, int D, GLOBAL const int* lengths, GLOBAL const float* xw,
                                GLOBAL const float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                                GLOBAL const float* hsrc, GLOBAL float* rz, GLOBAL float* rh) {
    gru_before_gate_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, lengths, xw, hw, bih, bhh, hsrc,
                             rz, rh);
}

KERNEL void gru_before_step_fwd(int s, int T, int B, int H, int D, int training, GLOBAL const int* lengths,
                                GLOBAL const float* xw, GLOBAL const float* hw, GLOBAL const float* bih,
                                GLOBAL const float* bhh, GLOBAL const float* rz, GLOBAL const float* rh,
                                GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y, GLOBAL float* gsave,
                                int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_before_step_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, training, lengths, xw, hw, bih,
                             bhh, rz, rh, h, hin, y, gsave, seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void gru_before_step_bwd(int s, int T, int B, int H, int D, GLOBAL const int* lengths, GLOBAL const float* dy,
                                GLOBAL const float* dhN, GLOBAL const float* dhrec, GLOBAL float* ddir,
                                GLOBAL const float* gsave, GLOBAL const float* y, GLOBAL const float* h0,
                                GLOBAL float* dgs, GLOBAL float* dgall,
                                int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_before_step_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, lengths, dy, dhN, dhrec, ddir,
                             gsave, y, h0, dgs, dgall, seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void gru_before_reset_bwd(int s, int T, int B, int H, int D, GLOBAL const int* lengths, GLOBAL const float* drh,
                                 GLOBAL const float* gsave, GLOBAL const float* y, GLOBAL const float* h0,
                                 GLOBAL float* dgs, GLOBAL float* dgall, GLOBAL float* dhrec,
                                 int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_before_reset_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, lengths, drh, gsave, y, h0, dgs,
                              dgall, dhrec, seed_lo, seed_hi, layer, thresh, scale);
}
