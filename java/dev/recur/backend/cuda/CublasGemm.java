package dev.recur.backend.cuda;

/**
 * A row-major (strided-batched) GEMM of the {@link dev.recur.backend.DeviceBackend} contract as the column-major
 * cuBLAS call that computes it. A row-major matrix read in column-major order is its transpose, so
 * {@code C = op(A) op(B)} (row-major, {@code m x n}) is {@code C^T = op(B)^T op(A)^T} (column-major,
 * {@code n x m}): cuBLAS gets B as its first operand and A as its second, the same transposition flags,
 * m and n exchanged, and each operand keeps its own leading dimension and batch stride (B's go with the first
 * operand, A's with the second). Offsets are the caller's: the first operand's address is B's, the second A's.
 *
 * @param transFirst   {@code CUBLAS_OP_T} for the first operand (the contract's B)
 * @param transSecond  {@code CUBLAS_OP_T} for the second operand (the contract's A)
 * @param m            cuBLAS m (rows of column-major C) = the contract's n
 * @param n            cuBLAS n = the contract's m
 * @param k            the inner dimension
 * @param ldFirst      leading dimension of the first operand (B's ldb; at least 1, as cuBLAS requires)
 * @param strideFirst  elements between the first operands of consecutive batches (B's stride)
 * @param ldSecond     leading dimension of the second operand (A's lda; at least 1)
 * @param strideSecond A's stride
 * @param ldc          leading dimension of C
 * @param strideC      C's stride
 * @param batch        GEMMs in the call: 1 is {@code cublasSgemm}, more {@code cublasSgemmStridedBatched}
 */
record CublasGemm(boolean transFirst, boolean transSecond, int m, int n, int k, int ldFirst, long strideFirst,
                  int ldSecond, long strideSecond, int ldc, long strideC, int batch) {

    /** The call for one GEMM. */
    static CublasGemm of(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc) {
        return of(transA, transB, m, n, k, lda, 0, ldb, 0, ldc, 0, 1);
    }

    /** The call for {@code batch} GEMMs whose operands lie {@code strideA}, {@code strideB}, {@code strideC} apart. */
    static CublasGemm of(boolean transA, boolean transB, int m, int n, int k, int lda, long strideA, int ldb, long strideB,
                         int ldc, long strideC, int batch) {
        // With k == 0 cuBLAS only scales C, but it still rejects a leading dimension of 0 for the empty operands.
        return new CublasGemm(transB, transA, n, m, k, Math.max(ldb, 1), strideB, Math.max(lda, 1), strideA, ldc, strideC, batch);
    }
}
