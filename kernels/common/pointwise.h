/* Bias plus activation over rows, forward and backward, and a strided 2-D copy.
 * act: 0 identity, 1 tanh, 2 relu, 3 sigmoid; tanh and sigmoid are step.h's rational forms (absolute error below
 * 4e-7), since a library tanh or exp is a scalar call per work item on PoCL (bias_act_fwd with tanh over 2 M
 * elements took 21 ms with them).
 * bias_act_fwd  grid {F, N}: y[n, f] = act(x[n, f] + bias[f])            (y may be x: in place)
 * bias_act_bwd  grid {F, N}: dx[n, f] = dy[n, f] * act'(y[n, f]), the derivative from the output:
 *   identity 1, tanh 1 - y^2, relu [y > 0], sigmoid y (1 - y)          (dx may be dy; dbias = col_sum of dx)
 * copy_strided  grid {cols, rows}: dst[doff + r*dld + c] = src[soff + r*sld + c], the concatenation or slice of
 *   row-major matrices a view cannot express (e.g. [N, A] and [N, B] into the columns of [N, A+B]); the ranges
 *   must not overlap. */
#ifndef RECUR_POINTWISE_H
#define RECUR_POINTWISE_H
#include "step.h"

FN float recur_act(int act, float a) {
    if (act == 1) return recur_tanh(a);
    if (act == 2) return a > 0.0f ? a : 0.0f;
    if (act == 3) return recur_sigmoid(a);
    return a;
}

FN float recur_act_grad(int act, float y) {
    if (act == 1) return 1.0f - y * y;
    if (act == 2) return y > 0.0f ? 1.0f : 0.0f;
    if (act == 3) return y * (1.0f - y);
    return 1.0f;
}

FN void bias_act_fwd_body(int f, int n, int N, int F, int act, GLOBAL const float* x, GLOBAL const float* bias,
                          GLOBAL float* y) {
    if (f >= F || n >= N) return;
    int i = n * F + f;
    y[i] = recur_act(act, x[i] + bias[f]);
}

FN void bias_act_bwd_body(int f, int n, int N, int F, int act, GLOBAL const float* y, GLOBAL const float* dy,
                          GLOBAL float* dx) {
    if (f >= F || n >= N) return;
    int i = n * F + f;
    dx[i] = dy[i] * recur_act_grad(act, y[i]);
}

FN void copy_strided_body(int c, int r, int rows, int cols, GLOBAL const float* src, int soff, int sld,
                          GLOBAL float* dst, int doff, int dld) {
    if (c >= cols || r >= rows) return;
    dst[doff + r * dld + c] = src[soff + r * sld + c];
}

#endif
