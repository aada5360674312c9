/* pool_mean_fwd / pool_mean_bwd / pool_max_fwd / pool_max_bwd: masked mean and max pooling of time-major outputs
 * y [T, B, W] over each sequence's own steps (lengths [B]) and their gradients, for many-to-one heads.
 *   pool_mean_fwd  out[b, j] = mean over t < len_b of y[t, b, j]                             grid {W, B}
 *   pool_mean_bwd  dy[t, b, j] = dout[b, j] / len_b for t < len_b, else 0                    grid {W, B}
 *   pool_max_fwd   out[b, j] = max over t < len_b, idx[b, j] = the first step holding it     grid {W, B}
 *   pool_max_bwd   dy[t, b, j] = dout[b, j] at t = idx[b, j], else 0                         grid {W, B}
 * Bodies and equations in kernels/common/pool.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/pool.h"

KERNEL void pool_mean_fwd(int T, int B, int W, GLOBAL const float* y, int yoff, GLOBAL const int* lengths,
                          GLOBAL float* out) {
    pool_mean_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), T, B, W, y, yoff, lengths, out);
}

KERNEL void pool_mean_bwd(int T, int B, int W, GLOBAL const int* lengths, GLOBAL const float* dout, GLOBAL float* dy,
                          int dyoff) {
    pool_mean_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), T, B, W, lengths, dout, dy, dyoff);
}

KERNEL void pool_max_fwd(int T, int B, int W, GLOBAL const float* y, int yoff, GLOBAL const int* lengths,
                         GLOBAL float* out, GLOBAL int* idx) {
    pool_max_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), T, B, W, y, yoff, lengths, out, idx);
}

KERNEL void pool_max_bwd(int T, int B, int W, GLOBAL const int* idx, GLOBAL const float* dout, GLOBAL float* dy,
                         int dyoff) {
    pool_max_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), T, B, W, idx, dout, dy, dyoff);
}
