/* Mean squared error fused with its gradient and its mean, over predictions and targets [N] (the regression loss
 * of a many-to-one head; the same definition as dev.recur.nn.layers.MeanSquaredError):
 *   e_i = pred[i] - target[i];   dpred[i] = 2 e_i / N;   out[0] = (sum over i ascending of e_i^2) / N
 * mse_fwd_bwd grid {N}: work item i writes dpred[i]; work item 0 also takes the sum, in index order, into out[0]
 *   (N serial steps: a regression head's N is a batch of a few outputs each), so one launch leaves the 4-byte loss on
 *   the device and nothing is summed twice or by atomics. dpred must not be pred (item 0 reads every pred). */
#ifndef RECUR_LOSS_H
#define RECUR_LOSS_H
#include "dialect.h"

FN void mse_fwd_bwd_body(int i, int N, GLOBAL const float* pred, GLOBAL const float* target, GLOBAL float* dpred,
                         GLOBAL float* out) {
    if (i >= N) return;
    dpred[i] = 2.0f * (pred[i] - target[i]) / (float) N;
    if (i != 0) return;
    float s = 0.0f;
    for (int q = 0; q < N; q++) {
        float e = pred[q] - target[q];
        s += e * e;
    }
    out[0] = s / (float) N;
}

#endif
