/* Per-row argmax and top-k over scores [N, V] for greedy and beam decoding; ties go to the lower index.
 * NaN scores are passed over (a diverged row must not win a beam by comparing false everywhere).
 * argmax_rows  grid {N}: idx[r] = the smallest j with x[r, j] = max of the row's numbers (0 if all are NaN)
 * topk_rows    grid {N}: vals[r, 0..K), idx[r, 0..K) = the K largest numbers of x[r, :], largest first; equal
 *   values in increasing index; slots left over when the row has fewer than K numbers get NaN and index -1.
 *   One pass over the row keeps the best K so far sorted in the output row: an element enters only when strictly
 *   greater than the current K-th (so of equal values the earlier index stays ahead), by insertion, O(V + K * the
 *   number of insertions).
 * source_mask  grid {B}: from padded time-major source ids [T, B] (entry t*B + b), lengths[b] = 1 + the last t with
 *   ids[t*B + b] != pad (0 if none) and mask[b*T + t] = 1 for t < lengths[b], else 0: the encoder's lengths and the
 *   attention mask made where the ids already are. */
#ifndef RECUR_DECODE_H
#define RECUR_DECODE_H
#include "dialect.h"

FN void argmax_rows_body(int r, int N, int V, GLOBAL const float* x, GLOBAL int* idx) {
    if (r >= N) return;
    GLOBAL const float* row = x + r * V;
    int best = 0;
    float bv = row[0];
    for (int j = 1; j < V; j++) {
        if (row[j] > bv || (bv != bv && row[j] == row[j])) {
            bv = row[j];
            best = j;
        }
    }
    idx[r] = best;
}

FN void topk_rows_body(int r, int N, int V, int K, GLOBAL const float* x, GLOBAL float* vals, GLOBAL int* idx) {
    if (r >= N) return;
    GLOBAL const float* row = x + r * V;
    GLOBAL float* ov = vals + r * K;
    GLOBAL int* oi = idx + r * K;
    int filled = 0;
    for (int j = 0; j < V; j++) {
        float xj = row[j];
        if (xj != xj || (filled == K && !(xj > ov[K - 1]))) continue;
        // Shift the smaller kept values down one place and put x_j above them.
        int q = filled < K ? filled : K - 1;
        while (q > 0 && xj > ov[q - 1]) {
            ov[q] = ov[q - 1];
            oi[q] = oi[q - 1];
            q--;
        }
        ov[q] = xj;
        oi[q] = j;
        if (filled < K) filled++;
    }
    for (int q = filled; q < K; q++) {
        ov[q] = NANF;
        oi[q] = -1;
    }
}

FN void source_mask_body(int b, int T, int B, int pad, GLOBAL const int* ids, GLOBAL int* lengths, GLOBAL int* mask) {
    if (b >= B) return;
    int len = 0;
    for (int t = 0; t < T; t++) {
        if (ids[t * B + b] != pad) len = t + 1;
    }
    lengths[b] = len;
    for (int t = 0; t < T; t++) mask[b * T + t] = t < len ? 1 : 0;
}

#endif
