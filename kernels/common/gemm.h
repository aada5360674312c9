/* Row-major register-blocked SGEMM for backends without a vendor BLAS:
 *   C[q] = alpha * op(A[q]) * op(B[q]) + beta * C[q],  C (m x n) element (i,j) at c[offC + q*strideC + i*ldc + j]
 *   op(A) (m x k): a[i*lda + p] (N) or a[p*lda + i] (T);  op(B) (k x n): b[p*ldb + j] (N) or b[j*ldb + p] (T)
 *   beta == 0 overwrites C without reading it.
 * Launch shape: grid {ceil(n/4), ceil(m/8), batch}; each work item computes an 8 x 4 block of C in
 * registers (8 rows, 4 columns), with no local memory: on CPU-class devices (PoCL) the vectoriser packs
 * neighbouring work items, on GPUs the register block amortises the loads. */
#ifndef RECUR_GEMM_H
#define RECUR_GEMM_H
#include "dialect.h"

#define RECUR_GEMM_TM 8
#define RECUR_GEMM_TN 4

#define RECUR_GEMM_BODY(NAME, A_AT, B_AT)                                                                  \
FN void NAME(int jb, int ib, int q, int M, int N, int K, float alpha,                                     \
             GLOBAL const float* RESTRICT a, int offA, int lda, int strideA,                              \
             GLOBAL const float* RESTRICT b, int offB, int ldb, int strideB,                              \
             float beta, GLOBAL float* RESTRICT c, int offC, int ldc, int strideC) {                      \
    int i0 = ib * RECUR_GEMM_TM, j0 = jb * RECUR_GEMM_TN;                                                 \
    if (i0 >= M || j0 >= N) return;                                                                       \
    GLOBAL const float* A = a + offA + q * strideA;                                                       \
    GLOBAL const float* Bm = b + offB + q * strideB;                                                      \
    GLOBAL float* C = c + offC + q * strideC;                                                             \
    float acc[RECUR_GEMM_TM][RECUR_GEMM_TN];                                                              \
    for (int u = 0; u < RECUR_GEMM_TM; u++)                                                               \
        for (int v = 0; v < RECUR_GEMM_TN; v++) acc[u][v] = 0.0f;                                         \
    if (i0 + RECUR_GEMM_TM <= M && j0 + RECUR_GEMM_TN <= N) {                                             \
        for (int p = 0; p < K; p++) {                                                                     \
            float av[RECUR_GEMM_TM], bv[RECUR_GEMM_TN];                                                   \
            for (int u = 0; u < RECUR_GEMM_TM; u++) av[u] = A[A_AT(i0 + u, p)];                           \
            for (int v = 0; v < RECUR_GEMM_TN; v++) bv[v] = Bm[B_AT(p, j0 + v)];                          \
            for (int u = 0; u < RECUR_GEMM_TM; u++)                                                       \
                for (int v = 0; v < RECUR_GEMM_TN; v++) acc[u][v] += av[u] * bv[v];                       \
        }                                                                                                 \
    } else {                                                                                              \
        for (int p = 0; p < K; p++) {                                                                     \
            float av[RECUR_GEMM_TM], bv[RECUR_GEMM_TN];                                                   \
            for (int u = 0; u < RECUR_GEMM_TM; u++) av[u] = i0 + u < M ? A[A_AT(i0 + u, p)] : 0.0f;       \
            for (int v = 0; v < RECUR_GEMM_TN; v++) bv[v] = j0 + v < N ? Bm[B_AT(p, j0 + v)] : 0.0f;      \
            for (int u = 0; u < RECUR_GEMM_TM; u++)                                                       \
                for (int v = 0; v < RECUR_GEMM_TN; v++) acc[u][v] += av[u] * bv[v];                       \
        }                                                                                                 \
    }                                                                                                     \
    for (int u = 0; u < RECUR_GEMM_TM; u++) {                                                             \
        if (i0 + u >= M) break;                                                                           \
        for (int v = 0; v < RECUR_GEMM_TN; v++) {                                                         \
            if (j0 + v >= N) break;                                                                       \
            int o = (i0 + u) * ldc + j0 + v;                                                              \
            C[o] = alpha * acc[u][v] + (beta == 0.0f ? 0.0f : beta * C[o]);                               \
        }                                                                                                 \
    }                                                                                                     \
}

#define RECUR_A_N(i, p) ((i) * lda + (p))
#define RECUR_A_T(i, p) ((p) * lda + (i))
#define RECUR_B_N(p, j) ((p) * ldb + (j))
#define RECUR_B_T(p, j) ((j) * ldb + (p))

RECUR_GEMM_BODY(gemm_nn_body, RECUR_A_N, RECUR_B_N)
RECUR_GEMM_BODY(gemm_nt_body, RECUR_A_N, RECUR_B_T)
RECUR_GEMM_BODY(gemm_tn_body, RECUR_A_T, RECUR_B_N)
RECUR_GEMM_BODY(gemm_tt_body, RECUR_A_T, RECUR_B_T)


/* Wide-block variant for op(B) = B (not transposed): an 8 x 8 block per work item, so that the 8 values of
 * B row p are one contiguous vector load and each A value a broadcast (what a CPU's SIMD units want).
 * Launch shape: grid {ceil(n/8), ceil(m/8), batch}. */
#define RECUR_GEMMW_TN 8

#define RECUR_GEMMW_BODY(NAME, A_AT)                                                                       \
FN void NAME(int jb, int ib, int q, int M, int N, int K, float alpha,                                     \
             GLOBAL const float* RESTRICT a, int offA, int lda, int strideA,                              \
             GLOBAL const float* RESTRICT b, int offB, int ldb, int strideB,                              \
             float beta, GLOBAL float* RESTRICT c, int offC, int ldc, int strideC) {                      \
    int i0 = ib * RECUR_GEMM_TM, j0 = jb * RECUR_GEMMW_TN;                                                \
    if (i0 >= M || j0 >= N) return;                                                                       \
    GLOBAL const float* A = a + offA + q * strideA;                                                       \
    GLOBAL const float* Bm = b + offB + q * strideB;                                                      \
    GLOBAL float* C = c + offC + q * strideC;                                                             \
    float acc[RECUR_GEMM_TM][RECUR_GEMMW_TN];                                                             \
    for (int u = 0; u < RECUR_GEMM_TM; u++)                                                               \
        for (int v = 0; v < RECUR_GEMMW_TN; v++) acc[u][v] = 0.0f;                                        \
    if (i0 + RECUR_GEMM_TM <= M && j0 + RECUR_GEMMW_TN <= N) {                                            \
        for (int p = 0; p < K; p++) {                                                                     \
            GLOBAL const float* brow = Bm + p * ldb + j0;                                                 \
            float bv[RECUR_GEMMW_TN];                                                                     \
            for (int v = 0; v < RECUR_GEMMW_TN; v++) bv[v] = brow[v];                                     \
            for (int u = 0; u < RECUR_GEMM_TM; u++) {                                                     \
                float av = A[A_AT(i0 + u, p)];                                                            \
                for (int v = 0; v < RECUR_GEMMW_TN; v++) acc[u][v] += av * bv[v];                         \
            }                                                                                             \
        }                                                                                                 \
    } else {                                                                                              \
        for (int p = 0; p < K; p++) {                                                                     \
            float bv[RECUR_GEMMW_TN];                                                                     \
            for (int v = 0; v < RECUR_GEMMW_TN; v++) bv[v] = j0 + v < N ? Bm[p * ldb + j0 + v] : 0.0f;    \
            for (int u = 0; u < RECUR_GEMM_TM; u++) {                                                     \
                float av = i0 + u < M ? A[A_AT(i0 + u, p)] : 0.0f;                                        \
                for (int v = 0; v < RECUR_GEMMW_TN; v++) acc[u][v] += av * bv[v];                         \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
    for (int u = 0; u < RECUR_GEMM_TM; u++) {                                                             \
        if (i0 + u >= M) break;                                                                           \
        for (int v = 0; v < RECUR_GEMMW_TN; v++) {                                                        \
            if (j0 + v >= N) break;                                                                       \
            int o = (i0 + u) * ldc + j0 + v;                                                              \
            C[o] = alpha * acc[u][v] + (beta == 0.0f ? 0.0f : beta * C[o]);                               \
        }                                                                                                 \
    }                                                                                                     \
}

RECUR_GEMMW_BODY(gemm_wide_nn_body, RECUR_A_N)
RECUR_GEMMW_BODY(gemm_wide_tn_body, RECUR_A_T)

#endif
