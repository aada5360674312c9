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
 * Launch shape: grid {ceil(cols/8), ceil(rows/8), batch}: a work item moves one 8 x 8 tile (tc, tr), so it
 * reads 8 runs of 8 contiguous source floats and writes 8 runs of 8 contiguous destination floats (one
 * element per work item read the source with a row stride per element and ran 5x slower on PoCL). */
FN void gemm_transpose_body(int tc, int tr, int q, int rows, int cols, GLOBAL const float* RESTRICT src, int off,
                            int ld, int stride, GLOBAL float* RESTRICT dst) {
    int c0 = tc * 8, r0 = tr * 8;
    if (c0 >= cols || r0 >= rows) return;
    GLOBAL const float* S = src + off + q * stride;
    GLOBAL float* Dst = dst + q * cols * rows;
#if defined(__OPENCL_VERSION__)
    if (c0 + 8 <= cols && r0 + 8 <= rows) {
        /* Whole tile: 8 vector loads, an in-register transpose, 8 vector stores. */
        float8 v0 = vload8(0, S + (r0 + 0) * ld + c0), v1 = vload8(0, S + (r0 + 1) * ld + c0);
        float8 v2 = vload8(0, S + (r0 + 2) * ld + c0), v3 = vload8(0, S + (r0 + 3) * ld + c0);
        float8 v4 = vload8(0, S + (r0 + 4) * ld + c0), v5 = vload8(0, S + (r0 + 5) * ld + c0);
        float8 v6 = vload8(0, S + (r0 + 6) * ld + c0), v7 = vload8(0, S + (r0 + 7) * ld + c0);
        GLOBAL float* d = Dst + c0 * rows + r0;
        vstore8((float8) (v0.s0, v1.s0, v2.s0, v3.s0, v4.s0, v5.s0, v6.s0, v7.s0), 0, d);
        vstore8((float8) (v0.s1, v1.s1, v2.s1, v3.s1, v4.s1, v5.s1, v6.s1, v7.s1), 0, d + rows);
        vstore8((float8) (v0.s2, v1.s2, v2.s2, v3.s2, v4.s2, v5.s2, v6.s2, v7.s2), 0, d + 2 * rows);
        vstore8((float8) (v0.s3, v1.s3, v2.s3, v3.s3, v4.s3, v5.s3, v6.s3, v7.s3), 0, d + 3 * rows);
        vstore8((float8) (v0.s4, v1.s4, v2.s4, v3.s4, v4.s4, v5.s4, v6.s4, v7.s4), 0, d + 4 * rows);
        vstore8((float8) (v0.s5, v1.s5, v2.s5, v3.s5, v4.s5, v5.s5, v6.s5, v7.s5), 0, d + 5 * rows);
        vstore8((float8) (v0.s6, v1.s6, v2.s6, v3.s6, v4.s6, v5.s6, v6.s6, v7.s6), 0, d + 6 * rows);
        vstore8((float8) (v0.s7, v1.s7, v2.s7, v3.s7, v4.s7, v5.s7, v6.s7, v7.s7), 0, d + 7 * rows);
        return;
    }
#endif
    for (int c = c0; c < c0 + 8 && c < cols; c++)
        for (int r = r0; r < r0 + 8 && r < rows; r++) Dst[c * rows + r] = S[r * ld + c];
}

#if defined(__OPENCL_VERSION__)
/* OpenCL-only (CUDA uses cuBLAS) explicit-vector kernels for op(B) = B, the schedule's every GEMM. A work item
 * computes 6 rows x 16 columns of C as twelve float8 accumulators, so each step of p is 2 vector loads of B,
 * 6 broadcasts of A and 12 vector multiply-adds: 15 of the 16 AVX2 registers, the usual SGEMM micro-kernel
 * shape of that register file. Dimension 0 of the grid runs over row blocks, so the work items of a
 * work-group (which PoCL runs one after another on one core) share one 16-column panel of B; the group copies
 * that panel, RECUR_GEMM_KC rows of p at a time, into local memory once, and every work item then streams it
 * contiguously from L1. Read in place, the panel is one 64-byte piece per row of B: at ldb = 1024 each piece
 * sits on its own 4 KiB page, which defeats the hardware prefetcher and the L1 sets, and measured on PoCL the
 * 4 x 16 block read that way ran at 45-50 GFLOP/s where this kernel runs at 130-150 (2 cores, quiet machine).
 * When one work-group holds all M rows (the per-step GEMMs, M = batch) B is read in place instead: the copy
 * would serve only that group's few row blocks, and measured at M = 32 it cost 10-20%.
 * Rows past M (a last partial block, e.g. the per-step GEMM at batch 32 = 5 blocks of 6 + 2) repeat row
 * M-1 and are not stored, so every block runs the vector loop; columns past N are zero in the staged panel
 * and not stored. Work items past M still take part in the copies and barriers.
 * Launch shape: grid {ceil(m/6) rounded up to the work-group width, ceil(n/16), batch}; any work-group width
 * (the copy loop strides by it). */
#define RECUR_GEMM_KC 256

/* One step of p of the 6 x 16 block: B row piece (b0, b1), the 6 A values of column pp. */
#define RECUR_GEMMV_STEP(A_AT, b0, b1, pp)                                                                \
    {                                                                                                     \
        float a0 = A[A_AT(i0, pp)];                                                                       \
        c00 = fma(a0, b0, c00); c01 = fma(a0, b1, c01);                                                   \
        float a1 = A[A_AT(i1, pp)];                                                                       \
        c10 = fma(a1, b0, c10); c11 = fma(a1, b1, c11);                                                   \
        float a2 = A[A_AT(i2, pp)];                                                                       \
        c20 = fma(a2, b0, c20); c21 = fma(a2, b1, c21);                                                   \
        float a3 = A[A_AT(i3, pp)];                                                                       \
        c30 = fma(a3, b0, c30); c31 = fma(a3, b1, c31);                                                   \
        float a4 = A[A_AT(i4, pp)];                                                                       \
        c40 = fma(a4, b0, c40); c41 = fma(a4, b1, c41);                                                   \
        float a5 = A[A_AT(i5, pp)];                                                                       \
        c50 = fma(a5, b0, c50); c51 = fma(a5, b1, c51);                                                   \
    }

/* Stores the 6 x 16 block at (i0, j0): C = alpha*acc + beta*C, or C += alpha*acc when ACCUM (later K chunks). */
#define RECUR_GEMMV_STORE(ACCUM)                                                                          \
    {                                                                                                     \
        float8 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};                    \
        float bt = (ACCUM) ? 1.0f : beta;                                                                 \
        for (int u = 0; u < 6 && i0 + u < M; u++) {                                                       \
            GLOBAL float* row = C + (i0 + u) * ldc + j0;                                                  \
            if (full) {                                                                                   \
                for (int h = 0; h < 2; h++) {                                                             \
                    float8 v = alpha * acc[2 * u + h];                                                    \
                    if (bt != 0.0f) v += bt * vload8(h, row);                                             \
                    vstore8(v, h, row);                                                                   \
                }                                                                                         \
            } else {                                                                                      \
                float rr[16];                                                                             \
                vstore8(acc[2 * u], 0, rr);                                                               \
                vstore8(acc[2 * u + 1], 1, rr);                                                           \
                for (int j = 0; j < 16 && j0 + j < N; j++)                                                \
                    row[j] = alpha * rr[j] + (bt == 0.0f ? 0.0f : bt * row[j]);                           \
            }                                                                                             \
        }                                                                                                 \
    }

#define RECUR_GEMMV_BODY(NAME, A_AT)                                                                      \
FN void NAME(int ib, int jb, int q, int lid, int lsize, int gsize, int M, int N, int K, float alpha,       \
             GLOBAL const float* RESTRICT a, int offA, int lda, int strideA,                              \
             GLOBAL const float* RESTRICT b, int offB, int ldb, int strideB,                              \
             float beta, GLOBAL float* RESTRICT c, int offC, int ldc, int strideC,                        \
             LOCAL_MEM float* RESTRICT bl) {                                                              \
    int i0 = ib * 6, j0 = jb * 16;                                                                        \
    GLOBAL const float* A = a + offA + q * strideA;                                                       \
    GLOBAL const float* Bp = b + offB + q * strideB + j0;                                                 \
    GLOBAL float* C = c + offC + q * strideC;                                                             \
    int i1 = min(i0 + 1, M - 1), i2 = min(i0 + 2, M - 1), i3 = min(i0 + 3, M - 1);                        \
    int i4 = min(i0 + 4, M - 1), i5 = min(i0 + 5, M - 1);                                                 \
    float8 c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0;                                          \
    float8 c30 = 0, c31 = 0, c40 = 0, c41 = 0, c50 = 0, c51 = 0;                                          \
    int full = j0 + 16 <= N;                                                                              \
    if (M <= 6 * lsize || K == 0) {                                                                       \
        /* One work-group holds every row (the per-step GEMMs): a staged panel would serve only the few    \
         * row blocks of this group, and the copy cost more than it saved (measured at M = 32). */         \
        if (i0 < M && full) {                                                                             \
            for (int p = 0; p < K; p++) {                                                                 \
                float8 b0 = vload8(0, Bp + p * ldb), b1 = vload8(1, Bp + p * ldb);                        \
                RECUR_GEMMV_STEP(A_AT, b0, b1, p)                                                         \
            }                                                                                             \
        } else if (i0 < M) {                                                                              \
            for (int p = 0; p < K; p++) {                                                                 \
                float r[16];                                                                              \
                for (int j = 0; j < 16; j++) r[j] = j0 + j < N ? Bp[p * ldb + j] : 0.0f;                   \
                float8 b0 = vload8(0, r), b1 = vload8(1, r);                                              \
                RECUR_GEMMV_STEP(A_AT, b0, b1, p)                                                         \
            }                                                                                             \
        }                                                                                                 \
        if (i0 >= M) return;                                                                              \
        RECUR_GEMMV_STORE(0)                                                                              \
        return;                                                                                           \
    }                                                                                                     \
    /* Staged: this work item owns row blocks ib*rb .. ib*rb + rb-1, rb = ceil(blocks / gsize), so a group's     \
     * panel copy serves 16*rb row blocks; over K > RECUR_GEMM_KC the block is accumulated in C chunk by chunk. */ \
    int blocks = (M + 5) / 6, rb = (blocks + gsize - 1) / gsize;                                          \
    for (int k0 = 0; k0 < K; k0 += RECUR_GEMM_KC) {                                                       \
        int kc = min(RECUR_GEMM_KC, K - k0);                                                              \
        BARRIER();                                                                                        \
        for (int p = lid; p < kc; p += lsize) {                                                           \
            GLOBAL const float* src = Bp + (k0 + p) * ldb;                                                \
            if (full) {                                                                                   \
                vstore8(vload8(0, src), 2 * p, bl);                                                       \
                vstore8(vload8(1, src), 2 * p + 1, bl);                                                   \
            } else {                                                                                      \
                for (int j = 0; j < 16; j++) bl[16 * p + j] = j0 + j < N ? src[j] : 0.0f;                 \
            }                                                                                             \
        }                                                                                                 \
        BARRIER();                                                                                        \
        for (int r = 0; r < rb; r++) {                                                                    \
            i0 = (ib * rb + r) * 6;                                                                       \
            if (i0 >= M) break;                                                                           \
            i1 = min(i0 + 1, M - 1); i2 = min(i0 + 2, M - 1); i3 = min(i0 + 3, M - 1);                    \
            i4 = min(i0 + 4, M - 1); i5 = min(i0 + 5, M - 1);                                             \
            c00 = 0; c01 = 0; c10 = 0; c11 = 0; c20 = 0; c21 = 0;                                         \
            c30 = 0; c31 = 0; c40 = 0; c41 = 0; c50 = 0; c51 = 0;                                         \
            for (int p = 0; p < kc; p++) {                                                                \
                float8 b0 = vload8(2 * p, bl), b1 = vload8(2 * p + 1, bl);                                \
                RECUR_GEMMV_STEP(A_AT, b0, b1, k0 + p)                                                    \
            }                                                                                             \
            RECUR_GEMMV_STORE(k0 > 0)                                                                     \
        }                                                                                                 \
    }                                                                                                     \
}

RECUR_GEMMV_BODY(gemm_v4_nn_body, RECUR_A_N)
RECUR_GEMMV_BODY(gemm_v4_tn_body, RECUR_A_T)
#endif

#endif
