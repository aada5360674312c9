/* argmax_rows / topk_rows: per-row argmax and top-k of scores [N, V] for greedy and beam decoding, ties to the
 * lower index, NaN passed over; source_mask: the encoder lengths and attention mask from padded source ids.
 *   argmax_rows  idx[r] = first index of the row maximum                                      grid {N}
 *   topk_rows    vals[r, :K], idx[r, :K] = the K largest, largest first                       grid {N}
 *   source_mask  lengths[b] = 1 + last t with ids[t*B+b] != pad, mask[b*T+t] = t < lengths[b]  grid {B}
 * Bodies in kernels/common/decode.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/decode.h"

KERNEL void argmax_rows(int N, int V, GLOBAL const float* x, GLOBAL int* idx) {
    argmax_rows_body(GLOBAL_ID(0), N, V, x, idx);
}

KERNEL void topk_rows(int N, int V, int K, GLOBAL const float* x, GLOBAL float* vals, GLOBAL int* idx) {
    topk_rows_body(GLOBAL_ID(0), N, V, K, x, vals, idx);
}

KERNEL void source_mask(int T, int B, int pad, GLOBAL const int* ids, GLOBAL int* lengths, GLOBAL int* mask) {
    source_mask_body(GLOBAL_ID(0), T, B, pad, ids, lengths, mask);
}
