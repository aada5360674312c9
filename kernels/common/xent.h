/* Masked softmax cross-entropy fused with its gradient, over logits [N, V] and targets [N] (int), padding id pad.
 *   count = #{r : targets[r] != pad}                       (the rows that count, found on the device)
 *   row r with t = targets[r] != pad:  lse = max_j x + log sum_j exp(x_j - max_j x)
 *       loss[r] = lse - x_t;   dlogits[r, j] = (exp(x_j - lse) - [j == t]) / count
 *   a padded row: loss[r] = 0, dlogits[r, :] = 0;  a target outside [0, V) (not pad): loss and dlogits NaN, so a
 *   bad id shows in the mean loss instead of being skipped silently.
 * softmax_xent_fwd_bwd grid {N}: one work item per row, three passes over the row (max, sum of exponentials, the
 *   gradient written once): the probabilities are recomputed in the last pass, never stored and re-read. Each
 *   work item also counts the non-padded targets itself (N reads, cached) so the launch needs no second kernel;
 *   dlogits may be the logits buffer itself (x_t is read before the row is overwritten).
 * softmax_xent_mean    grid {1}: out[0] = sum of loss[r] over non-padded rows in row order / count (0 when every
 *   row is padding): the one number a training step reads back. */
#ifndef RECUR_XENT_H
#define RECUR_XENT_H
#include "dialect.h"

/* e^x with Cephes' expf (the cpu backend's CpuMath.exp, within 2 ulp): x = n ln2 + r with |r| <= ln2/2, e^r by a
 * degree-6 polynomial, 2^n built in the exponent bits (adding 1.5*2^23 rounds x log2 e to the integer n and leaves n
 * in the low mantissa bits). Written out because a library exp is a scalar call per element on PoCL: two per logit
 * made softmax_xent_fwd_bwd over 512 x 10000 logits take 46 ms. Inputs below -87.3 give 2^-126, not 0. */
FN float recur_exp(float x) {
    x = x < -87.3365447504f ? -87.3365447504f : (x > 88.0f ? 88.0f : x);
    float v = x * 1.44269504088896341f + 12582912.0f;
    float n = v - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * (r * r) + r + 1.0f;
    return e * AS_FLOAT((AS_INT(v) + 127) << 23);
}

FN void softmax_xent_fwd_bwd_body(int r, int N, int V, int pad, GLOBAL const float* logits, GLOBAL const int* targets,
                                  GLOBAL float* loss, GLOBAL float* dlogits) {
    if (r >= N) return;
    GLOBAL const float* x = logits + r * V;
    GLOBAL float* d = dlogits + r * V;
    int t = targets[r];
    if (t == pad) {
        loss[r] = 0.0f;
        for (int j = 0; j < V; j++) d[j] = 0.0f;
        return;
    }
    if (t < 0 || t >= V) {
        loss[r] = NANF;
        for (int j = 0; j < V; j++) d[j] = NANF;
        return;
    }
    int count = 0;
    for (int q = 0; q < N; q++) count += targets[q] != pad ? 1 : 0;
    float mx = x[0];
    for (int j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    float s = 0.0f;
    for (int j = 0; j < V; j++) s += recur_exp(x[j] - mx);
    float lse = mx + LOGF(s);
    loss[r] = lse - x[t];
    float inv = 1.0f / (float) count;
    for (int j = 0; j < V; j++) d[j] = (recur_exp(x[j] - lse) - (j == t ? 1.0f : 0.0f)) * inv;
}

FN void softmax_xent_mean_body(int w, int N, int pad, GLOBAL const int* targets, GLOBAL const float* loss,
                               GLOBAL float* out) {
    if (w != 0) return;
    float sum = 0.0f;
    int count = 0;
    for (int r = 0; r < N; r++) {
        if (targets[r] == pad) continue;
        sum += loss[r];
        count++;
    }
    out[0] = count > 0 ? sum / (float) count : 0.0f;
}

#endif
