/* gemm_nn / gemm_nt / gemm_tn / gemm_tt: row-major strided-batched SGEMM (OpenCL backend's hand-written GEMM)
 *   C[q] = alpha op(A[q]) op(B[q]) + beta C[q]   (kernels/common/gemm.h)
 * gemm_v4_nn / gemm_v4_tn: the same for op(B) = B, a 6 x 16 block of C per work item as float8 vectors, B staged
 * through local memory (OpenCL only; the name is kept from the first, 4-row version of these kernels).
 * Launch: grid {ceil(n/4), ceil(m/8), batch} (8 x 4 block of C per work item); v4: {ceil(m/6), ceil(n/16), batch}
 * with dimension 0 rounded up to the work-group width. */
#include "common/gemm.h"

#define RECUR_GEMM_KERNEL(NAME, BODY)                                                                    \
KERNEL void NAME(int M, int N, int K, float alpha,                                                      \
                 GLOBAL const float* RESTRICT a, int offA, int lda, int strideA,                        \
                 GLOBAL const float* RESTRICT b, int offB, int ldb, int strideB,                        \
                 float beta, GLOBAL float* RESTRICT c, int offC, int ldc, int strideC) {                \
    BODY(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), M, N, K, alpha, a, offA, lda, strideA,               \
         b, offB, ldb, strideB, beta, c, offC, ldc, strideC);                                           \
}

RECUR_GEMM_KERNEL(gemm_nn, gemm_nn_body)
RECUR_GEMM_KERNEL(gemm_nt, gemm_nt_body)
RECUR_GEMM_KERNEL(gemm_tn, gemm_tn_body)
RECUR_GEMM_KERNEL(gemm_tt, gemm_tt_body)

#define RECUR_GEMMV_KERNEL(NAME, BODY)                                                                   \
KERNEL void NAME(int M, int N, int K, float alpha,                                                      \
                 GLOBAL const float* RESTRICT a, int offA, int lda, int strideA,                        \
                 GLOBAL const float* RESTRICT b, int offB, int ldb, int strideB,                        \
                 float beta, GLOBAL float* RESTRICT c, int offC, int ldc, int strideC) {                \
    LOCAL_MEM float bl[RECUR_GEMM_KC * 16];                                                             \
    BODY(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), LOCAL_ID0, LOCAL_SIZE0, (int) get_global_size(0), M, N, K, \
         alpha,                                                                                         \
         a, offA, lda, strideA, b, offB, ldb, strideB, beta, c, offC, ldc, strideC, bl);                \
}

RECUR_GEMMV_KERNEL(gemm_v4_nn, gemm_v4_nn_body)
RECUR_GEMMV_KERNEL(gemm_v4_tn, gemm_v4_tn_body)

/* gemm_transpose: packs op(A) = A^T into a row-major scratch so the GEMM runs as NN. Grid {ceil(cols/8),
 * ceil(rows/8), batch}: one 8 x 8 tile per work item. */
KERNEL void gemm_transpose(int rows, int cols, GLOBAL const float* RESTRICT src, int off, int ld, int stride,
                           GLOBAL float* RESTRICT dst) {
    gemm_transpose_body(GLOBAL_ID(0), GLOBAL_ID(1), GLOBAL_ID(2), rows, cols, src, off, ld, stride, dst);
}
