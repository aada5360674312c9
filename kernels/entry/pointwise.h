/* bias_act_fwd / bias_act_bwd / copy_strided: bias plus activation (0 identity, 1 tanh, 2 relu, 3 sigmoid) over
 * rows [N, F], its backward from the output, and a strided copy of a [rows, cols] block between row-major matrices.
 *   bias_act_fwd  y = act(x + bias[f])                                                        grid {F, N}
 *   bias_act_bwd  dx = dy * act'(y)      (dbias: col_sum of dx)                               grid {F, N}
 *   copy_strided  dst[doff + r*dld + c] = src[soff + r*sld + c]                               grid {cols, rows}
 * Bodies in kernels/common/pointwise.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/pointwise.h"

KERNEL void bias_act_fwd(int N, int F, int act, GLOBAL const float* x, GLOBAL const float* bias, GLOBAL float* y) {
    bias_act_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), N, F, act, x, bias, y);
}

KERNEL void bias_act_bwd(int N, int F, int act, GLOBAL const float* y, GLOBAL const float* dy, GLOBAL float* dx) {
    bias_act_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), N, F, act, y, dy, dx);
}

KERNEL void copy_strided(int rows, int cols, GLOBAL const float* src, int soff, int sld, GLOBAL float* dst, int doff,
                         int dld) {
    copy_strided_body(GLOBAL_ID(0), GLOBAL_ID(1), rows, cols, src, soff, sld, dst, doff, dld);
}
