/* lstm_seq_fwd / gru_seq_fwd / rnn_seq_fwd: a whole layer's forward recurrence (every step, both directions)
 * in one launch of ONE work-group, for small batches where per-step launches dominate:
 *   for s in 0..T-1:  hw = h~ W_hh^T  (all gates)  |barrier|  the cell's fused step (lstm.h, gru.h, rnn.h)  |barrier|
 * (LSTM without projection, GRU reset-after, RNN tanh/relu; the input projection xw is one GEMM before.)
 * Launch: grid {L} as exactly one work-group of L work items; optional kernels (DeviceBackend.supports).
 * Bodies in kernels/common/persist.h. */
#include "common/persist.h"

KERNEL void lstm_seq_fwd(int T, int B, int H, int D, int peep, int coupled, int training,
                         GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* whhT,
                         GLOBAL float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                         GLOBAL const float* peepw, GLOBAL float* c, GLOBAL float* h, GLOBAL float* hin,
                         GLOBAL float* y, GLOBAL float* gsave, GLOBAL float* csave,
                         int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    lstm_seq_fwd_body(LOCAL_ID0, LOCAL_SIZE0, T, B, H, D, peep, coupled, training, lengths, xw, whhT, hw, bih, bhh,
                      peepw, c, h, hin, y, gsave, csave, seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void gru_seq_fwd(int T, int B, int H, int D, int training,
                        GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* whhT,
                        GLOBAL float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                        GLOBAL float* h, GLOBAL float* hin, GLOBAL float* y, GLOBAL float* gsave,
                        int seed_lo, int seed_hi, int layer, int thresh, float scale) {
    gru_seq_fwd_body(LOCAL_ID0, LOCAL_SIZE0, T, B, H, D, training, lengths, xw, whhT, hw, bih, bhh, h, hin, y, gsave,
                     seed_lo, seed_hi, layer, thresh, scale);
}

KERNEL void rnn_seq_fwd(int T, int B, int H, int D, int act,
                        GLOBAL const int* lengths, GLOBAL const float* xw, GLOBAL const float* whhT,
                        GLOBAL float* hw, GLOBAL const float* bih, GLOBAL const float* bhh,
                        GLOBAL float* h, GLOBAL float* y) {
    rnn_seq_fwd_body(LOCAL_ID0, LOCAL_SIZE0, T, B, H, D, act, lengths, xw, whhT, hw, bih, bhh, h, y);
}
