/* Shared helpers of the per-step kernels: activations and the direction/length arithmetic.
 * Step s of direction d for sequence b (len = lengths[b]) is active iff s < len and processes time
 * t = s (d = 0) or t = len-1-s (d = 1); its previous time is t-1 (d = 0) or t+1 (d = 1). */
#ifndef RECUR_STEP_H
#define RECUR_STEP_H
#include "dialect.h"
#include "random.h"

/* tanh as a rational function (Eigen's float tanh: odd degree-13 numerator, even degree-6 denominator, input
 * clamped to [-9, 9], absolute error below 4e-7 on the whole line). Only
 * multiply-adds and one division: on CPU OpenCL (PoCL) a library tanh or exp is a scalar call per work item,
 * which made the fused step kernels cost more than the recurrent GEMM (LSTM B=32 H=256: 1.3 ms of pointwise per
 * step against 0.6 ms of GEMM); with this the work-item loops vectorise. */
FN float recur_tanh(float x) {
    float c = x < -9.0f ? -9.0f : (x > 9.0f ? 9.0f : x);
    float x2 = c * c;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return c * p / q;
}

/* sigmoid(x) = (1 + tanh(x/2)) / 2: absolute error below 2e-7, no exp. */
FN float recur_sigmoid(float x) {
    return 0.5f + 0.5f * recur_tanh(0.5f * x);
}

#if defined(__OPENCL_VERSION__)
/* recur_tanh / recur_sigmoid of step.h on 8 lanes (OpenCL vector types). */
FN float8 recur_tanh8(float8 x) {
    float8 c = clamp(x, -9.0f, 9.0f);
    float8 x2 = c * c;
    float8 p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float8 q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return c * p / q;
}

FN float8 recur_sigmoid8(float8 x) {
    return 0.5f + 0.5f * recur_tanh8(0.5f * x);
}
#endif

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
