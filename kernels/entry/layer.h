/* Layer-level kernels around the time loop (equations in kernels/common/layer.h):
 *   rnn_dh0 {P,B,D}, mask_state {P,B,D}, gather_hprev {P,B,T*D}, input_dropout_fwd {I,B,T*D},
 *   input_dropout_bwd {I,B,T}, merge_fwd {W,B,T}, merge_bwd {P,B,T*D}, layer_input_bwd {W,B,T}, col_sum {N}. */
#include "common/layer.h"

KERNEL void rnn_dh0(int B, int P, int D, int has_ddir, GLOBAL const float* dhrec, GLOBAL const float* ddir,
                    GLOBAL float* dh0, int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    rnn_dh0_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), B, P, D, has_ddir, dhrec, ddir, dh0,
                 seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void mask_state(int B, int P, int D, GLOBAL const float* src, GLOBAL float* dst,
                       int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    mask_state_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), B, P, D, src, dst, seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void gather_hprev(int T, int B, int P, int D, GLOBAL const int* lengths, GLOBAL const float* y,
                         GLOBAL const float* h0, GLOBAL float* dst,
                         int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gather_hprev_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), T, B, P, D, lengths, y, h0, dst,
                      seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void input_dropout_fwd(int T, int B, int I, int D, GLOBAL const float* x, GLOBAL float* dst,
                              int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    input_dropout_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), T, B, I, D, x, dst,
                           seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void input_dropout_bwd(int T, int B, int I, int D, GLOBAL const float* dxd, GLOBAL float* dx,
                              int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    input_dropout_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), T, B, I, D, dxd, dx,
                           seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void merge_fwd(int T, int B, int P, int D, int W, int mode, int residual, GLOBAL const int* lengths,
                      GLOBAL const float* y, GLOBAL const float* in, GLOBAL float* dst,
                      int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    merge_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), T, B, P, D, W, mode, residual, lengths, y, in, dst,
                   seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void merge_bwd(int T, int B, int P, int D, int W, int mode, GLOBAL const int* lengths,
                      GLOBAL const float* dout, GLOBAL const float* y, GLOBAL float* dy) {
    merge_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), T, B, P, D, W, mode, lengths, dout, y, dy);
}

KERNEL void layer_input_bwd(int T, int B, int W, int residual, GLOBAL const int* lengths, GLOBAL const float* dx,
                            GLOBAL const float* dout, GLOBAL float* dst,
                            int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    layer_input_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), T, B, W, residual, lengths, dx, dout, dst,
                         seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void col_sum(int M, int N, GLOBAL const float* src, GLOBAL float* dst, float beta) {
    col_sum_body(GLOBAL_ID(0), M, N, src, dst, beta);
}
