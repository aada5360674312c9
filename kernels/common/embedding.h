/* Embedding lookup and its gradient, with a padding index and no atomics.
 * embedding_fwd        grid {E, N}: out[n, e] = weight[ids[n], e]; 0 for an id outside [0, V).
 * embedding_bwd_index  grid {1}: a stable counting sort of the positions by id, in one work item, O(N + V):
 *   afterwards the positions n with ids[n] == v (v != pad, 0 <= v < V) are order[start[v] .. start[v+1]) in
 *   increasing n; pad and out-of-range ids are left out, so their rows get no gradient.
 *   How: start[v+2] counts id v, an inclusive prefix sum makes start[v+1] the first slot of id v, and placing
 *   each position at start[v+1]++ leaves start[v+1] at the first slot of id v+1, which is what start[v+1] means.
 * embedding_bwd        grid {E, V}: dweight[v, e] = beta*dweight[v, e] + sum over k in [start[v], start[v+1]) of
 *   dout[order[k], e], in position order (beta == 0 overwrites without reading). Work O(V*E + N*E) rather than
 *   the O(V*N*E) of every (v, e) scanning all positions: for V = 10k, N = 2k, E = 256 that is 3 M instead of 5 G
 *   reads. The id lists come from embedding_bwd_index, launched before with the same ids. */
#ifndef RECUR_EMBEDDING_H
#define RECUR_EMBEDDING_H
#include "dialect.h"

FN void embedding_fwd_body(int e, int n, int N, int E, int V, GLOBAL const int* ids, GLOBAL const float* weight,
                           GLOBAL float* out) {
    if (e >= E || n >= N) return;
    int v = ids[n];
    out[n * E + e] = v >= 0 && v < V ? weight[v * E + e] : 0.0f;
}

FN void embedding_bwd_index_body(int w, int N, int V, int pad, GLOBAL const int* ids, GLOBAL int* start,
                                 GLOBAL int* order) {
    if (w != 0) return;
    for (int v = 0; v <= V; v++) start[v] = 0;
    for (int n = 0; n < N; n++) {
        int v = ids[n];
        if (v != pad && v >= 0 && v + 2 <= V) start[v + 2]++;
    }
    for (int v = 1; v <= V; v++) start[v] += start[v - 1];
    for (int n = 0; n < N; n++) {
        int v = ids[n];
        if (v != pad && v >= 0 && v < V) order[start[v + 1]++] = n;
    }
}

FN void embedding_bwd_body(int e, int v, int V, int E, GLOBAL const int* start, GLOBAL const int* order,
                           GLOBAL const float* dout, GLOBAL float* dweight, float beta) {
    if (e >= E || v >= V) return;
    float acc = 0.0f;
    for (int k = start[v]; k < start[v + 1]; k++) acc += dout[order[k] * E + e];
    int i = v * E + e;
    dweight[i] = (beta == 0.0f ? 0.0f : beta * dweight[i]) + acc;
}

#endif
