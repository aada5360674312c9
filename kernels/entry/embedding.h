/* embedding_fwd / embedding_bwd_index / embedding_bwd: lookup [N] ids -> [N, E] rows, and the weight gradient
 * with a padding index, deterministic and without atomics.
 *   embedding_fwd        out[n, :] = weight[ids[n], :]                                        grid {E, N}
 *   embedding_bwd_index  stable counting sort of positions by id (pad left out)               grid {1}
 *   embedding_bwd        dweight[v, :] = beta*dweight[v, :] + sum of dout[n, :] over the
 *                        positions of id v, in position order                                 grid {E, V}
 * Bodies and equations in kernels/common/embedding.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/embedding.h"

KERNEL void embedding_fwd(int N, int E, int V, GLOBAL const int* ids, GLOBAL const float* weight, GLOBAL float* out) {
    embedding_fwd_body(GLOBAL_ID(0), GLOBAL_ID(1), N, E, V, ids, weight, out);
}

KERNEL void embedding_bwd_index(int N, int V, int pad, GLOBAL const int* ids, GLOBAL int* start, GLOBAL int* order) {
    embedding_bwd_index_body(GLOBAL_ID(0), N, V, pad, ids, start, order);
}

KERNEL void embedding_bwd(int V, int E, GLOBAL const int* start, GLOBAL const int* order, GLOBAL const float* dout,
                          GLOBAL float* dweight, float beta) {
    embedding_bwd_body(GLOBAL_ID(0), GLOBAL_ID(1), V, E, start, order, dout, dweight, beta);
}
