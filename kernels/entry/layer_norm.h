/* ln_rows_fwd / ln_rows_bwd / ln_step_fwd / ln_step_bwd / col_dot: layer normalisation of gate blocks.
 *   a = (v - mean) / sqrt(var + 1e-5) * gain + shift per block of H values (biased variance)
 *   dv = r * (dxh - mean(dxh) - xh * mean(dxh * xh)),  dxh = da * gain
 * Launch: ln_rows_* grid {rows} (one work item per block row), ln_step_* grid {nblk, B, D}, col_dot grid {N}.
 * Bodies in kernels/common/layernorm.h. */
#include "common/layernorm.h"

KERNEL void ln_rows_fwd(int rows, int H, int G, int D, int training, GLOBAL float* v, GLOBAL const float* gain,
                        GLOBAL const float* shift, GLOBAL float* xhat, GLOBAL float* rstd) {
    ln_rows_fwd_body(GLOBAL_ID(0), rows, H, G, D, training, v, gain, shift, xhat, rstd);
}

KERNEL void ln_rows_bwd(int rows, int H, int G, int D, GLOBAL const float* da, GLOBAL const float* gain,
                        GLOBAL const float* xhat, GLOBAL const float* rstd, GLOBAL float* dv) {
    ln_rows_bwd_body(GLOBAL_ID(0), rows, H, G, D, da, gain, xhat, rstd, dv);
}

KERNEL void ln_step_fwd(int s, int T, int B, int H, int D, int G, int g0, int nblk, int training,
                        GLOBAL const int* lengths, GLOBAL float* v, GLOBAL const float* gain, GLOBAL const float* shift,
                        GLOBAL float* xhat, GLOBAL float* rstd) {
    ln_step_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, G, g0, nblk, training, lengths, v, gain,
                     shift, xhat, rstd);
}

KERNEL void ln_step_bwd(int s, int T, int B, int H, int D, int G, int g0, int nblk, GLOBAL const int* lengths,
                        GLOBAL float* dg, GLOBAL const float* gain, GLOBAL const float* xhat, GLOBAL const float* rstd,
                        GLOBAL float* dvall) {
    ln_step_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), s, T, B, H, D, G, g0, nblk, lengths, dg, gain, xhat,
                     rstd, dvall);
}

KERNEL void col_dot(int M, int N, GLOBAL const float* a, GLOBAL const float* b, GLOBAL float* dst, float beta) {
    col_dot_body(GLOBAL_ID(0), M, N, a, b, dst, beta);
}
