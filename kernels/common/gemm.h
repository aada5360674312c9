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


/* gemm_transpose: dst[q][c][r] = src[off + q*stride + r*ld + c] for r < rows, c < cols (dst rows of length
 * rows, batches packed). Lets a GEMM with a transposed A run as the fast non-transposed kernel.
 * Launch shape: grid {cols, rows, batch}. */
FN void gemm_transpose_body(int c, int r, int q, int rows, int cols, GLOBAL const float* RESTRICT src, int off, int ld,
                            int stride, GLOBAL float* RESTRICT dst) {
    if (c >= cols || r >= rows) return;
    dst[(q * cols + c) * rows + r] = src[off + q * stride + r * ld + c];
}

#if defined(__OPENCL_VERSION__)
/* OpenCL-only (CUDA uses cuBLAS) explicit-vector kernel for op(B) = B, the schedule's case: a work item
 * computes 4 rows x 16 columns of C as two float8 per row, so each step of p is 2 contiguous vector loads of
 * B, 4 broadcasts of A and 8 vector multiply-adds (10 of a CPU's 16 vector registers). Measured on PoCL it is
 * 3x the scalar 8x8 block. */
/* Launch shape: grid {ceil(n/16), ceil(m/4), batch}. Partial column tiles use a plain scalar loop. */
#define RECUR_GEMMV4_BODY(NAME, A_AT)                                                                      \
FN void NAME(int jb, int ib, int q, int M, int N, int K, float alpha,                                     \
             GLOBAL const float* RESTRICT a, int offA, int lda, int strideA,                              \
             GLOBAL const float* RESTRICT b, int offB, int ldb, int strideB,                              \
             float beta, GLOBAL float* RESTRICT c, int offC, int ldc, int strideC) {                      \
    int i0 = ib * 4, j0 = jb * 16;                                                                        \
    if (i0 >= M || j0 >= N) return;                                                                       \
    GLOBAL const float* A = a + offA + q * strideA;                                                       \
    GLOBAL const float* Bm = b + offB + q * strideB;                                                      \
    GLOBAL float* C = c + offC + q * strideC;                                                             \
    if (j0 + 16 > N) {                                                                                    \
        for (int i = i0; i < i0 + 4 && i < M; i++) {                                                      \
            for (int j = j0; j < j0 + 16 && j < N; j++) {                                                 \
                float acc = 0.0f;                                                                         \
                for (int p = 0; p < K; p++) acc += A[A_AT(i, p)] * Bm[p * ldb + j];                       \
                int o = i * ldc + j;                                                                      \
                C[o] = alpha * acc + (beta == 0.0f ? 0.0f : beta * C[o]);                                 \
            }                                                                                             \
        }                                                                                                 \
        return;                                                                                           \
    }                                                                                                     \
    /* Rows past M (a last partial block, e.g. the per-step GEMM at batch 1) repeat row M-1 and are not       \
     * stored, so every block runs the vector loop. */                                                    \
    int i1 = i0 + 1 < M ? i0 + 1 : M - 1, i2 = i0 + 2 < M ? i0 + 2 : M - 1, i3 = i0 + 3 < M ? i0 + 3 : M - 1; \
    float8 c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;                        \
    GLOBAL const float* bp = Bm + j0;                                                                     \
    for (int p = 0; p < K; p++) {                                                                         \
        float8 b0 = vload8(0, bp + p * ldb), b1 = vload8(1, bp + p * ldb);                                \
        float a0 = A[A_AT(i0, p)], a1 = A[A_AT(i1, p)], a2 = A[A_AT(i2, p)], a3 = A[A_AT(i3, p)];         \
        c00 += a0 * b0; c01 += a0 * b1;                                                                   \
        c10 += a1 * b0; c11 += a1 * b1;                                                                   \
        c20 += a2 * b0; c21 += a2 * b1;                                                                   \
        c30 += a3 * b0; c31 += a3 * b1;                                                                   \
    }                                                                                                     \
    float8 acc[8] = {c00, c01, c10, c11, c20, c21, c30, c31};                                             \
    for (int u = 0; u < 4 && i0 + u < M; u++) {                                                          \
        GLOBAL float* row = C + (i0 + u) * ldc + j0;                                                      \
        for (int h = 0; h < 2; h++) {                                                                     \
            float8 v = alpha * acc[2 * u + h];                                                            \
            if (beta != 0.0f) v += beta * vload8(h, row);                                                 \
            vstore8(v, h, row);                                                                           \
        }                                                                                                 \
    }                                                                                                     \
}

RECUR_GEMMV4_BODY(gemm_v4_nn_body, RECUR_A_N)
RECUR_GEMMV4_BODY(gemm_v4_tn_body, RECUR_A_T)
#endif

#endif
