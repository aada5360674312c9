/* sample_rows: one token per row of logits [N, V] drawn from softmax(logits / T) with a counter-based generator keyed
 * by (seed, step, row), optionally cut to the tokens at or above a per-row value (top-k), and optionally its untempered
 * log-probability.
 *   sample_rows  idx[r] = inverse-CDF draw of row r at u = uniform(seed, step, r); logp[r] = log p(idx[r])   grid {N}
 * Body in kernels/common/sample.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/sample.h"

KERNEL void sample_rows(int N, int V, float T, int seed_lo, int seed_hi, int step, int want_logp, int cut_off,
                        int cut_stride, GLOBAL const float* x, GLOBAL const float* cut, GLOBAL int* idx,
                        GLOBAL float* logp) {
    sample_rows_body(GLOBAL_ID(0), N, V, T, seed_lo, seed_hi, step, want_logp, cut_off, cut_stride, x, cut, idx, logp);
}
