/* softmax_xent_fwd_bwd / softmax_xent_mean: masked softmax cross-entropy with its gradient in one pass per row.
 *   loss[r] = logsumexp(x_r) - x_r[t_r],  dlogits[r] = (softmax(x_r) - onehot(t_r)) / count   (t_r != pad)
 *   loss[r] = 0, dlogits[r] = 0 for a padded row; count = the non-padded rows, counted on the device
 *   softmax_xent_fwd_bwd  one work item per row                                             grid {N}
 *   softmax_xent_mean     out[0] = sum of the non-padded losses in row order / count        grid {1}
 * Bodies and equations in kernels/common/xent.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/xent.h"

KERNEL void softmax_xent_fwd_bwd(int N, int V, int pad, GLOBAL const float* logits, GLOBAL const int* targets,
                                 GLOBAL float* loss, GLOBAL float* dlogits) {
    softmax_xent_fwd_bwd_body(GLOBAL_ID(0), N, V, pad, logits, targets, loss, dlogits);
}

KERNEL void softmax_xent_mean(int N, int pad, GLOBAL const int* targets, GLOBAL const float* loss, GLOBAL float* out) {
    softmax_xent_mean_body(GLOBAL_ID(0), N, pad, targets, loss, out);
}
