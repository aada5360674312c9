/* mse_fwd_bwd: mean squared error over predictions and targets [N] with its gradient and its mean in one launch.
 *   dpred[i] = 2 (pred[i] - target[i]) / N;  out[0] = sum of (pred[i] - target[i])^2 in index order / N   grid {N}
 * Body and equation in kernels/common/loss.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/loss.h"

KERNEL void mse_fwd_bwd(int N, GLOBAL const float* pred, GLOBAL const float* target, GLOBAL float* dpred,
                        GLOBAL float* out) {
    mse_fwd_bwd_body(GLOBAL_ID(0), N, pred, target, dpred, out);
}
