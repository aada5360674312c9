/* Batched beam search on the device: B items of K rows each (row r = b*K + j, N = B*K rows), vocabulary V, the
 * semantics of the host's dev.recur.nn.decode.BeamSearch. One step is beam_candidates, then topk_rows over each item's
 * K*V candidates (a row of [B, K*V]: the candidate of (row j, token t) is at j*V + t, so topk_rows' ties to the lower
 * index are the host's ties to the lower (row, token) pair), then beam_update; beam_backtrace reads the answer out of
 * the step histories once at the end.
 *
 * beam_candidates grid {N}: N,K,V,step,end, logits, tok, score, cand
 *   lse = max_t x[r,t] + log sum_t exp(x[r,t] - max)      (x = logits; the row's log-softmax is x - lse)
 *   step == 0: s = (r % K == 0 ? 0 : -inf), finished = 0  (the K rows start identical: only the first offers, or the
 *              beam would fill with K copies of one hypothesis)
 *   step  > 0: s = score[r], finished = (tok[r] == end)   (a row is finished once it took the end token)
 *   cand[r*V + t] = finished ? (t == end ? s : -inf) : s + (x[r,t] - lse)
 *   A finished hypothesis so offers one continuation, itself unchanged (the end token at its score), and competes with
 *   the open ones by the same cumulative score; a dead row (s = -inf) offers only -inf.
 * beam_update grid {N}: N,K,V,step,end, vals, idx, parents, tok, score, histTok, histPar
 *   from topk_rows' vals, idx [B, K] over cand: slot r = b*K + j with i = idx[r]
 *   alive (i >= 0 and vals[r] > -inf): parents[r] = b*K + i / V, tok[r] = i % V, score[r] = vals[r]
 *   dead (fewer live candidates than K): parents[r] = b*K, tok[r] = end, score[r] = -inf
 *   histTok[step*N + r] = tok[r], histPar[step*N + r] = parents[r]
 *   (tok is the next step's input and its finished flags; parents reorders the model's state)
 * beam_backtrace grid {B}: B,K,S,end,alpha, score, histTok, histPar, out, at, scores   after S steps
 *   a row r's hypothesis: row_{S-1} = r, row_{s-1} = histPar[s*N + row_s], token_s = histTok[s*N + row_s];
 *   length = 1 + the first s with token_s == end, else S; finished = (token_{S-1} == end: a finished hypothesis
 *   carries the end token on, an open one never took it); its score lp = score[r] and
 *   norm = lp / max(1, length)^alpha (alpha == 0: lp; the power as exp(alpha * log length)).
 *   The pick of item b: over its rows with lp > -inf, finished before open, then the higher norm, ties to the lower
 *   row (the host's order); row b*K when none is alive (a diverged item).
 *   out[b*S + s] = token_s of the pick (from its end token on, the end token), at[b*S + s] = s*N + histPar[s*N + row_s]
 *   (the flat [S*N] index of the step-s row whose logits and attention gave token_s), scores[2b] = lp,
 *   scores[2b+1] = norm.
 * repeat_rows_i32 grid {C, M*R}: M,C,R, src, dst   dst[q*C + c] = src[(q / R)*C + c]: each of M int rows R times in a
 *   row (an attention mask tiled to K rows per item in one launch; a float copy must not carry int bits).
 * Every work item writes only its own row, item or element; no atomics, sums in index order. */
#ifndef RECUR_BEAM_H
#define RECUR_BEAM_H
#include "dialect.h"
#include "xent.h"

#define RECUR_NEG_INF (-AS_FLOAT(0x7f800000))

FN void beam_candidates_body(int r, int N, int K, int V, int step, int end, GLOBAL const float* logits,
                             GLOBAL const int* tok, GLOBAL const float* score, GLOBAL float* cand) {
    if (r >= N) return;
    GLOBAL const float* x = logits + r * V;
    GLOBAL float* c = cand + r * V;
    float ninf = RECUR_NEG_INF;
    float s = step == 0 ? (r % K == 0 ? 0.0f : ninf) : score[r];
    int finished = step > 0 && tok[r] == end;
    if (finished) {
        for (int t = 0; t < V; t++) c[t] = t == end ? s : ninf;
        return;
    }
    float mx = x[0];
    for (int t = 1; t < V; t++) mx = x[t] > mx ? x[t] : mx;
    float sum = 0.0f;
    for (int t = 0; t < V; t++) sum += recur_exp(x[t] - mx);
    float lse = mx + LOGF(sum);
    for (int t = 0; t < V; t++) c[t] = s + (x[t] - lse);
}

FN void beam_update_body(int r, int N, int K, int V, int step, int end, GLOBAL const float* vals, GLOBAL const int* idx,
                         GLOBAL int* parents, GLOBAL int* tok, GLOBAL float* score, GLOBAL int* histTok,
                         GLOBAL int* histPar) {
    if (r >= N) return;
    int base = (r / K) * K;
    int i = idx[r];
    float v = vals[r];
    int p, t;
    if (i >= 0 && v > RECUR_NEG_INF) {
        p = base + i / V;
        t = i % V;
    } else {
        p = base;
        t = end;
        v = RECUR_NEG_INF;
    }
    parents[r] = p;
    tok[r] = t;
    score[r] = v;
    histTok[step * N + r] = t;
    histPar[step * N + r] = p;
}

/* The length of row r's hypothesis after S steps (see beam_backtrace). */
FN int beam_length(int r, int N, int S, int end, GLOBAL const int* histTok, GLOBAL const int* histPar) {
    int len = S, row = r;
    for (int s = S - 1; s >= 0; s--) {
        if (histTok[s * N + row] == end) len = s + 1;
        row = histPar[s * N + row];
    }
    return len;
}

FN void beam_backtrace_body(int b, int B, int K, int S, int end, float alpha, GLOBAL const float* score,
                            GLOBAL const int* histTok, GLOBAL const int* histPar, GLOBAL int* out, GLOBAL int* at,
                            GLOBAL float* scores) {
    if (b >= B) return;
    int N = B * K;
    int pick = -1, pickFin = 0;
    float pickNorm = 0.0f;
    for (int j = 0; j < K; j++) {
        int r = b * K + j;
        float lp = score[r];
        if (!(lp > RECUR_NEG_INF)) continue;
        int len = beam_length(r, N, S, end, histTok, histPar);
        int fin = histTok[(S - 1) * N + r] == end;
        float d = (float) (len > 1 ? len : 1);
        float norm = alpha == 0.0f ? lp : lp / EXPF(alpha * LOGF(d));
        if (pick < 0 || (fin && !pickFin) || (fin == pickFin && norm > pickNorm)) {
            pick = r;
            pickFin = fin;
            pickNorm = norm;
        }
    }
    if (pick < 0) {
        pick = b * K;
        pickNorm = score[pick];
    }
    int row = pick;
    for (int s = S - 1; s >= 0; s--) {
        int p = histPar[s * N + row];
        out[b * S + s] = histTok[s * N + row];
        at[b * S + s] = s * N + p;
        row = p;
    }
    scores[2 * b] = score[pick];
    scores[2 * b + 1] = pickNorm;
}

FN void repeat_rows_i32_body(int c, int q, int M, int C, int R, GLOBAL const int* src, GLOBAL int* dst) {
    if (c >= C || q >= M * R) return;
    dst[q * C + c] = src[(q / R) * C + c];
}

#endif
