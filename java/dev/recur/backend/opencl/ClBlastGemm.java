package dev.recur.backend.opencl;

import org.jocl.blast.CLBlast;
import org.jocl.blast.CLBlastLayout;
import org.jocl.blast.CLBlastTranspose;
import org.jocl.cl_command_queue;
import org.jocl.cl_mem;

/**
 * CLBlast through jocl-blast. CLBlast compiles its kernels on the first call for a context (about 20 s on
 * PoCL) and caches them per context; {@link OpenClDevice} keeps one context per process, so a process pays
 * that once (and PoCL's own on-disk kernel cache shortens it for later processes).
 */
final class ClBlastGemm implements ClGemm {
    ClBlastGemm() {
        CLBlast.setExceptionsEnabled(true);
    }

    @Override
    public String name() {
        return "CLBlast";
    }

    @Override
    public void gemm(cl_command_queue queue, boolean transA, boolean transB, int m, int n, int k, float alpha,
                     cl_mem a, long offA, int lda, long strideA, cl_mem b, long offB, int ldb, long strideB,
                     float beta, cl_mem c, long offC, int ldc, long strideC, int batch) {
        int ta = transA ? CLBlastTranspose.CLBlastTransposeYes : CLBlastTranspose.CLBlastTransposeNo;
        int tb = transB ? CLBlastTranspose.CLBlastTransposeYes : CLBlastTranspose.CLBlastTransposeNo;
        if (batch == 1) {
            CLBlast.CLBlastSgemm(CLBlastLayout.CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, offA, lda, b, offB, ldb,
                    beta, c, offC, ldc, queue, null);
        } else {
            CLBlast.CLBlastSgemmStridedBatched(CLBlastLayout.CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, offA, lda,
                    strideA, b, offB, ldb, strideB, beta, c, offC, ldc, strideC, batch, queue, null);
        }
    }

    @Override
    public void close() {
        // CLBlast's cache belongs to the shared context and lives as long as it does.
    }
}
