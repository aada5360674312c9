/* Shared helpers of the per-step kernels: activations and the direction/length arithmetic.
 * Step s of direction d for sequence b (len = lengths[b]) is active iff s < len and processes time
 * t = s (d = 0) or t = len-1-s (d = 1); its previous time is t-1 (d = 0) or t+1 (d = 1). */
#ifndef RECUR_STEP_H
#define RECUR_STEP_H
#include "dialect.h"
#include "random.h"

FN float recur_sigmoid(float x) {
    return 1.0f / (1.0f + EXPF(-x));
}

FN float recur_tanh(float x) {
    return TANHF(x);
}

FN int recur_time(int s, int d, int len) {
    return d == 0 ? s : len - 1 - s;
}

FN int recur_prev_time(int t, int d) {
    return d == 0 ? t - 1 : t + 1;
}

FN int recur_is_first(int t, int d, int len) {
    return d == 0 ? t == 0 : t == len - 1;
}

/* Index of [T,B,D,W] element (t, b, d, j). */
FN int recur_tbd(int t, int b, int d, int B, int D, int W, int j) {
    return ((t * B + b) * D + d) * W + j;
}

/* Index of [D,B,W] element (d, b, j). */
FN int recur_dbw(int d, int b, int B, int W, int j) {
    return (d * B + b) * W + j;
}

#endif
