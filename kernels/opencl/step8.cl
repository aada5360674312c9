/* lstm_step_fwd8 / lstm_step_bwd8 / gru_step_fwd8 / rnn_step_fwd8: the step kernels lstm_step_fwd, lstm_step_bwd,
 * gru_step_fwd and rnn_step_fwd (same equations, same arguments) with 8 consecutive hidden units per work item,
 * as float8 vectors on OpenCL: the one-unit kernels' scalar gate math cost PoCL as much CPU as the step's
 * recurrent GEMM.
 * Launch: grid {ceil(H/8), B, D}. Optional kernels (DeviceBackend.supports). Bodies in kernels/common/{lstm,gru,rnn}.h. */
#include "common/lstm.h"
#include "common/gru.h"
#include "common/rnn.h"

KERNEL void lstm_step_fwd8(int s, int T, int B, int H, int D, int P, int proj, int peep, int coupled, int training,
                           GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                           GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL const float* peepw,
                           GLOBAL float* c, GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y,
                           GLOBAL float* gsave, GLOBAL float* csave, GLOBAL float* mout, GLOBAL float* msave,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_step_fwd8_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, P, proj, peep, coupled, training,
                        lengths, xw, hw, bih, bhh, peepw, c, h, hin, y, gsave, csave, mout, msave,
                        seed_lo, seed_hi, layer, thresh, scale);
}

/* lstm_step_bwd8: lstm_step_bwd (same arguments) with 8 units per work item. */
KERNEL void lstm_step_bwd8(int s, int T, int B, int H, int D, int P, int proj, int peep, int coupled,
                           GLOBAL const int* lengths, GLOBAL const float* dy, GLOBAL const float* dhN,
                           GLOBAL const float* dhrec, GLOBAL const float* dm, GLOBAL const float* dcN,
                           GLOBAL float* dc, GLOBAL const float* gsave, GLOBAL const float* csave,
                           GLOBAL const float* c0, GLOBAL const float* peepw, GLOBAL float* dgs, GLOBAL float* dgall,
                           int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_step_bwd8_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, P, proj, peep, coupled,
                        lengths, dy, dhN, dhrec, dm, dcN, dc, gsave, csave, c0, peepw, dgs, dgall,
                        seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void gru_step_fwd8(int s, int T, int B, int H, int D, int training,
                          GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                          GLOBAL const float* bih, GLOBAL const float* bhh,
                          GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y, GLOBAL float* gsave,
                          int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_step_fwd8_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, training, lengths, xw, hw, bih, bhh,
                       h, hin, y, gsave, seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void rnn_step_fwd8(int s, int T, int B, int H, int D, int act,
                          GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* hw,
                          GLOBAL const float* bih, GLOBAL const float* bhh, GLOBAL float* h, GLOBAL float* y) {
    rnn_step_fwd8_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, act, lengths, xw, hw, bih, bhh, h, y);
}
