package dev.recur.backend.opencl;

import org.jocl.cl_command_queue;
import org.jocl.cl_mem;

/**
 * A row-major strided-batched SGEMM on an OpenCL queue (see {@link dev.recur.backend.DeviceBackend#gemm}):
 * the hand-written register-blocked kernel ({@link HandGemm}) or CLBlast ({@link ClBlastGemm}).
 */
interface ClGemm extends AutoCloseable {
    String name();

    void gemm(cl_command_queue queue, boolean transA, boolean transB, int m, int n, int k, float alpha,
              cl_mem a, long offA, int lda, long strideA, cl_mem b, long offB, int ldb, long strideB,
              float beta, cl_mem c, long offC, int ldc, long strideC, int batch);

    @Override
    void close();
}
