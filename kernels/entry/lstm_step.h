/* lstm_step_fwd / lstm_step_bwd / lstm_proj_fwd / lstm_proj_bwd / lstm_peephole_grad: the LSTM layer's
 * pointwise work, both directions per launch.
 *   forward   i,f,o = sig(pre + peepholes), g = tanh(pre), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
 *             (coupled: f = 1-i; projection: h_t = W_hr (o tanh c_t), GEMM + lstm_proj_fwd)
 *   backward  gate pre-activation gradients and dc_{t-1}, see kernels/common/lstm.h
 * Launch: step kernels grid {H, B, D}; projection kernels grid {P, B, D}; peephole_grad grid {H, D}. */
#include "common/lstm.h"

KERNEL void lstm_step_fwd(int s, int T, int B, int H, int D, int P, int proj, int peep, int coupled, int training,
                          GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                          GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL const float* peepw,
                          GLOBAL float* c, GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                          GLOBAL float* gsave, GLOBAL float* csave, GLOBAL float* mout, GLOBAL float* msave,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_step_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, P, proj, peep, coupled, training,
                       lengths, xw, hw, bih, bhh, peepw, c, h, hin, y, gsave, csave, mout, msave,
                       seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void lstm_step_bwd(int s, int T, int B, int H, int D, int P, int proj, int peep, int coupled,
                          GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                          GLOBAL const float* dhrec, GLOBAL const float* dm, GLOBAL const float* dcN,
                          GLOBAL float* dc, GLOBAL const float* gsave, GLOBAL const float* csave,
                          GLOBAL const float* c0, GLOBAL const float* peepw, GLOBAL float* dgs, GLOBAL float* dgall,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_step_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, P, proj, peep, coupled,
                       lengths, dy, dhN, dhrec, dm, dcN, dc, gsave, csave, c0, peepw, dgs, dgall,
                       seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void lstm_proj_fwd(int s, int T, int B, int P, int D, GLOBAL const int* lengths, GLOBAL const float* hp,
                          GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_proj_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, P, D, lengths, hp, h, hin, y,
                       seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void lstm_proj_bwd(int s, int T, int B, int P, int D, GLOBAL const int* lengths, GLOBAL const float* dy,
                          GLOBAL const float* dhN, GLOBAL const float* dhrec, GLOBAL float* dht, GLOBAL float* dhtall,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_proj_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, P, D, lengths, dy, dhN, dhrec, dht, dhtall,
                       seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void lstm_peephole_grad(int T, int B, int H, int D, int G, int coupled, GLOBAL const int* lengths,
                               GLOBAL const float* dgall, GLOBAL const float* csave, GLOBAL const float* c0,
                               GLOBAL float* dst) {
    lstm_peephole_grad_body(GLOBAL_ID(0), GLOBAL_ID(1), T, B, H, D, G, coupled, lengths, dgall, csave, c0, dst);
}
