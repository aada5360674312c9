package dev.recur.backend.cuda;

/**
 * A row-major GEMM of the {@link dev.recur.backend.DeviceBackend} contract as the column-major cuBLAS call
 * that computes it. A row-major matrix read in column-major order is its transpose, so
 * {@code C = op(A) op(B)} (row-major, {@code m x n}) is {@code C^T = op(B)^T op(A)^T} (column-major,
 * {@code n x m}): cuBLAS gets B as its first operand and A as its second, the same transposition flags,
 * and m and n exchanged; leading dimensions, offsets and strides carry over unchanged.
 *
 * @param transFirst  {@code CUBLAS_OP_T} for the first operand (the contract's B)
 * @param transSecond {@code CUBLAS_OP_T} for the second operand (the contract's A)
 * @param m           cuBLAS m (rows of column-major C) = the contract's n
 * @param n           cuBLAS n = the contract's m
 * @param k           the inner dimension
 * @param ldFirst     leading dimension of the first operand (B's ldb; at least 1, as cuBLAS requires)
 * @param ldSecond    leading dimension of the second operand (A's lda; at least 1)
 * @param ldc         leading dimension of C
 */
record CublasGemm(boolean transFirst, boolean transSecond, int m, int n, int k, int ldFirst, int ldSecond, int ldc) {

    static CublasGemm of(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc) {
        // With k == 0 cuBLAS only scales C, but it still rejects a leading dimension of 0 for the empty operands.
        return new CublasGemm(transB, transA, n, m, k, Math.max(ldb, 1), Math.max(lda, 1), ldc);
    }
}
