/* beam_candidates / beam_update / beam_backtrace: batched beam search on the device (with topk_rows between the first
 * two); repeat_rows_i32: int rows repeated R times in a row.
 *   beam_candidates  cand[r, t] = row r's score + log_softmax(logits[r])[t]; a finished row: its score at end only  grid {N}
 *   beam_update      from topk_rows' vals, idx: parents, tokens, scores, step histories                              grid {N}
 *   beam_backtrace   per item the best hypothesis (finished first, then score/len^alpha): tokens, rows, scores        grid {B}
 *   repeat_rows_i32  dst[q, c] = src[q / R, c]                                                                      grid {C, M*R}
 * Bodies in kernels/common/beam.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/beam.h"

KERNEL void beam_candidates(int N, int K, int V, int step, int end, GLOBAL const float* logits, GLOBAL const int* tok,
                            GLOBAL const float* score, GLOBAL float* cand) {
    beam_candidates_body(GLOBAL_ID(0), N, K, V, step, end, logits, tok, score, cand);
}

KERNEL void beam_update(int N, int K, int V, int step, int end, GLOBAL const float* vals, GLOBAL const int* idx,
                        GLOBAL int* parents, GLOBAL int* tok, GLOBAL float* score, GLOBAL int* histTok,
                        GLOBAL int* histPar) {
    beam_update_body(GLOBAL_ID(0), N, K, V, step, end, vals, idx, parents, tok, score, histTok, histPar);
}

KERNEL void beam_backtrace(int B, int K, int S, int end, float alpha, GLOBAL const float* score,
                           GLOBAL const int* histTok, GLOBAL const int* histPar, GLOBAL int* out, GLOBAL int* at,
                           GLOBAL float* scores) {
    beam_backtrace_body(GLOBAL_ID(0), B, K, S, end, alpha, score, histTok, histPar, out, at, scores);
}

KERNEL void repeat_rows_i32(int M, int C, int R, GLOBAL const int* src, GLOBAL int* dst) {
    repeat_rows_i32_body(GLOBAL_ID(0), GLOBAL_ID(1), M, C, R, src, dst);
}
