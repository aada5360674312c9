/* rnn_step_fwd / rnn_step_bwd: one time step of a plain RNN layer, both directions in one launch.
 *   forward   h_t = act(xw[t] + b_ih + W_hh h_{t-1} + b_hh),  act = tanh (act=0) or relu (act=1)
 *   backward  dpre_t = (dh_t + dy_t) * act'(h_t), to dgs [D,B,H] (for the dh_{t-1} GEMM) and dgall [T,B,D,H]
 * Launch: grid {H, B, D}, one work item per hidden unit, sequence and direction; the bodies are in
 * kernels/common/rnn.h. */
#include "common/rnn.h"

KERNEL void rnn_step_fwd(int s, int T, int B, int H, int D, int act,
                         GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                         GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL float* h, GLOBAL float* y) {
    rnn_step_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, act, lengths, xw, hw, bih, bhh, h, y);
}

KERNEL void rnn_step_bwd(int s, int T, int B, int H, int D, int act,
                         GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                         GLOBAL const float* dhrec, GLOBAL const float* y, GLOBAL float* dgs, GLOBAL float* dgall) {
    rnn_step_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, act, lengths, dy, dhN, dhrec, y,
                      dgs, dgall);
}
