/* adam_step / sgd_step / grad_norm_partial / grad_clip_scale: optimizer steps over a range [off, off+n) of a flat
 * parameter buffer, and global-norm gradient clipping that stays on the device.
 *   adam_step          Adam (L2: gs += wd*p) or AdamW (decoupled: p *= 1 - lr*wd); m, v moments; bias
 *                      corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t (the launcher's, from t)  grid {n}
 *   sgd_step           SGD with weight decay, momentum (dampening, Nesterov)                 grid {n}
 *   grad_norm_partial  parts[poff+q] = sum of x^2 over elements q, q+P, q+2P, ...           grid {P}
 *   grad_clip_scale    norm = sqrt(sum of parts in order), scale = min(1, maxNorm/(norm+1e-6)) grid {1}
 * Both optimizers read the gradient times the device scalar scale[0]. Bodies and equations in
 * kernels/common/optim.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/optim.h"

KERNEL void adam_step(int off, int n, float lr, float beta1, float beta2, float eps, float wd, int decoupled, float bc1,
                      float bc2, GLOBAL const float* scale, GLOBAL float* p, GLOBAL const float* g, GLOBAL float* m,
                      GLOBAL float* v) {
    adam_step_body(GLOBAL_ID(0), off, n, lr, beta1, beta2, eps, wd, decoupled, bc1, bc2, scale, p, g, m, v);
}

KERNEL void sgd_step(int off, int n, int first, float lr, float momentum, float dampening, float wd, int nesterov,
                     GLOBAL const float* scale, GLOBAL float* p, GLOBAL const float* g, GLOBAL float* buf) {
    sgd_step_body(GLOBAL_ID(0), off, n, first, lr, momentum, dampening, wd, nesterov, scale, p, g, buf);
}

KERNEL void grad_norm_partial(int off, int n, int P, GLOBAL const float* x, int poff, GLOBAL float* parts) {
    grad_norm_partial_body(GLOBAL_ID(0), off, n, P, x, poff, parts);
}

KERNEL void grad_clip_scale(int nparts, GLOBAL const float* parts, float maxNorm, GLOBAL float* norm,
                            GLOBAL float* scale) {
    grad_clip_scale_body(GLOBAL_ID(0), nparts, parts, maxNorm, norm, scale);
}
