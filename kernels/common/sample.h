/* Temperature sampling of one token per row of logits [N, V], reproducible from a seed alone (decoding on the device).
 *   row r:  m = max_j x[r,j];  e_j = exp((x[r,j] - m) / T), or 0 when a cut is given and x[r,j] < c_r;
 *           S = e_0 + e_1 + ... + e_{V-1} (j ascending)
 *           u = uniform(seed, step, r) in [0, 1);  idx[r] = the first j with u*S < e_0 + ... + e_j
 *           (when rounding leaves none: the last j whose e_j still changed the running sum)
 *   with want_logp: logp[r] = x[r,idx] - m - log(sum_j exp(x[r,j] - m)), the chosen token's log-probability under the
 *           untempered softmax (what a decoder's logProb sums, as the host Sampler reports it)
 *   cut (top-k): with cut_stride > 0, c_r = cut[cut_off + r * cut_stride], e.g. the K-th largest logit that
 *           topk_rows left in vals[r, K-1] (cut_off K-1, stride K): only tokens at or above it are drawn (every token
 *           tied with the K-th is kept, as the usual top-k filter does); a NaN c_r (a row of fewer than K numbers)
 *           cuts nothing. cut_stride 0: no cut (cut is not read).
 *   uniform(seed, step, r): counter-based, no state buffer: k = mix64(seed), c = (step << 32) | r (both as unsigned
 *           32-bit words), h = mix64(k + (c + 1) * 0x9E3779B97F4A7C15), u = (h >> 40) * 2^-24, where mix64 is
 *           splitmix64's finaliser (java.util.SplittableRandom's mix64): for one seed the draws are splitmix64's
 *           stream at position c. Integer operations only, so the float64 reference (TrainKernels.sampleUniform)
 *           computes the same u bit for bit; u has 24 bits, exact in float32 and float64.
 * sample_rows grid {N}: one work item per row; a draw is a function of (seed, step, r, the row's logits) alone, never
 *   of the launch shape or of any other row. Two passes over the row (max, then the exponentials summed), a third to
 *   find the token, a fourth only for the log-probability at T != 1 or with a cut. exp is recur_exp (xent.h: the cpu backend's
 *   CpuMath.exp), so cpu, OpenCL and CUDA weigh the tokens alike.
 * Rounding: the device sums float32 exponentials, the reference float64 ones. A row whose u*S falls within that
 *   rounding of a boundary of the cumulative sum may pick the neighbouring token (rare: the boundaries' float32
 *   uncertainty is about V * 2^-24 of the mass); everything else picks the reference's token.
 * A NaN logit gives an unspecified token of that row (no NaN is passed over, unlike argmax_rows). */
#ifndef RECUR_SAMPLE_H
#define RECUR_SAMPLE_H
#include "dialect.h"
#include "xent.h"

#if defined(__OPENCL_VERSION__)
typedef ulong recur_u64;
#else
typedef unsigned long long recur_u64;
#endif

FN recur_u64 recur_mix64(recur_u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

/* The draw's uniform in [0, 1): 24 random bits. */
FN float recur_sample_uniform(uint seed_lo, uint seed_hi, uint step, uint row) {
    recur_u64 k = recur_mix64(((recur_u64) seed_hi << 32) | (recur_u64) seed_lo);
    recur_u64 c = ((recur_u64) step << 32) | (recur_u64) row;
    recur_u64 h = recur_mix64(k + (c + 1UL) * 0x9E3779B97F4A7C15UL);
    return (float) (uint) (h >> 40) * 5.9604644775390625e-8f;
}

FN void sample_rows_body(int r, int N, int V, float T, int seed_lo, int seed_hi, int step, int want_logp, int cut_off,
                         int cut_stride, GLOBAL const float* logits, GLOBAL const float* cut, GLOBAL int* idx,
                         GLOBAL float* logp) {
    if (r >= N) return;
    GLOBAL const float* x = logits + r * V;
    float c = cut_stride > 0 ? cut[cut_off + r * cut_stride] : 0.0f;
    int has_cut = cut_stride > 0 && c == c;
    float m = x[0];
    for (int j = 1; j < V; j++) m = x[j] > m ? x[j] : m;
    float s = 0.0f;
    for (int j = 0; j < V; j++) s += has_cut && x[j] < c ? 0.0f : recur_exp((x[j] - m) / T);
    float target = recur_sample_uniform((uint) seed_lo, (uint) seed_hi, (uint) step, (uint) r) * s;
    float acc = 0.0f;
    int tok = -1, last = 0;
    for (int j = 0; j < V && tok < 0; j++) {
        float next = acc + (has_cut && x[j] < c ? 0.0f : recur_exp((x[j] - m) / T));
        if (next > acc) last = j;
        acc = next;
        if (target < acc) tok = j;
    }
    if (tok < 0) tok = last;
    idx[r] = tok;
    if (want_logp) {
        float s1 = s;
        if (T != 1.0f || has_cut) {
            s1 = 0.0f;
            for (int j = 0; j < V; j++) s1 += recur_exp(x[j] - m);
        }
        logp[r] = x[tok] - m - LOGF(s1);
    }
}

#endif
