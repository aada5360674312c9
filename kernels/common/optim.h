/* Optimizer steps over a flat parameter buffer, and global-norm gradient clipping without a read-back.
 * Every kernel updates elements i in [off, off + n) of p (and its state) from the gradient g times the device
 * scalar scale[0] (1 when not clipping; grad_clip_scale writes it). A parameter group (its own lr, weight decay
 * 0 for biases, gains and embeddings) is one launch over its range; a frozen range is simply not launched.
 *
 * adam_step    grid {n}, PyTorch 1.13's Adam / AdamW (amsgrad off), step t >= 1:
 *   gs = g*scale;  Adam: gs += wd*p            AdamW (decoupled): p *= 1 - lr*wd
 *   m = b1*m + (1-b1)*gs;   v = b2*v + (1-b2)*gs^2
 *   p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)     with the bias corrections bc1 = 1-b1^t, bc2 = 1-b2^t
 *   The launcher (TrainKernels.adamStep) takes t and passes bc1, bc2, computed in float64 once per launch: b^t
 *   in the kernel is the same number in every work item, and PoCL's pow (or exp and log) is a scalar library
 *   call per work item, which made a step over 1 M parameters 400 ms (70 ms with exp/log) instead of ~2 ms.
 * sgd_step     grid {n}, PyTorch 1.13's SGD:
 *   gs = g*scale + wd*p;  with momentum mu != 0: buf = first ? gs : mu*buf + (1-dampening)*gs,
 *   gs = nesterov ? gs + mu*buf : buf;   p -= lr*gs      (buf untouched when mu == 0)
 * grad_norm_partial  grid {P}: parts[poff + q] = sum_k x[off + q + k*P]^2 over q + k*P < n, k ascending.
 *   Strided rather than blocked so that neighbouring work items read neighbouring elements (coalesced on a GPU);
 *   the order of every sum is fixed by P alone, never by the device, so the result is deterministic.
 * grad_clip_scale    grid {1}: total = sum of parts[0..nparts) in index order (one work item: no atomics, no
 *   work-group order), norm[0] = sqrt(total), scale[0] = min(1, maxNorm / (norm + 1e-6)), PyTorch's
 *   clip_grad_norm_ coefficient, left on the device for the optimizer launches that follow. */
#ifndef RECUR_OPTIM_H
#define RECUR_OPTIM_H
#include "dialect.h"

FN void adam_step_body(int e, int off, int n, float lr, float beta1, float beta2, float eps, float wd, int decoupled,
                       float bc1, float bc2, GLOBAL const float* scale, GLOBAL float* p, GLOBAL const float* g,
                       GLOBAL float* m, GLOBAL float* v) {
    if (e >= n) return;
    int i = off + e;
    float pi = p[i];
    float gi = g[i] * scale[0];
    if (decoupled) pi *= 1.0f - lr * wd;
    else gi += wd * pi;
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    float denom = SQRTF(vi) / SQRTF(bc2) + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - (lr / bc1) * (mi / denom);
}

FN void sgd_step_body(int e, int off, int n, int first, float lr, float momentum, float dampening, float wd,
                      int nesterov, GLOBAL const float* scale, GLOBAL float* p, GLOBAL const float* g,
                      GLOBAL float* buf) {
    if (e >= n) return;
    int i = off + e;
    float pi = p[i];
    float d = g[i] * scale[0] + wd * pi;
    if (momentum != 0.0f) {
        // The first step copies the gradient into the buffer (PyTorch), so buf needs no zeroing beforehand.
        float b = first ? d : momentum * buf[i] + (1.0f - dampening) * d;
        buf[i] = b;
        d = nesterov ? d + momentum * b : b;
    }
    p[i] = pi - lr * d;
}

FN void grad_norm_partial_body(int q, int off, int n, int P, GLOBAL const float* x, int poff, GLOBAL float* parts) {
    if (q >= P) return;
    float acc = 0.0f;
    for (int k = q; k < n; k += P) {
        float xi = x[off + k];
        acc += xi * xi;
    }
    parts[poff + q] = acc;
}

FN void grad_clip_scale_body(int w, int nparts, GLOBAL const float* parts, float maxNorm, GLOBAL float* norm,
                             GLOBAL float* scale) {
    if (w != 0) return;
    float total = 0.0f;
    for (int q = 0; q < nparts; q++) total += parts[q];
    float nrm = SQRTF(total);
    float coef = maxNorm / (nrm + 1e-6f);
    norm[0] = nrm;
    scale[0] = coef < 1.0f ? coef : 1.0f;
}

#endif
