package dev.recur.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The row-major to column-major mapping of the CUDA backend's GEMMs, checked without a GPU: the cuBLAS call
 * that {@link CublasGemm} describes is executed here by a column-major GEMM written from cuBLAS's documented
 * semantics, and must give exactly the contract's row-major result (every element of C, including the ones
 * between batches that must stay untouched), and must pass cuBLAS's argument rules.
 */
class CublasGemmTest {
    @Test
    void columnMajorCallComputesTheRowMajorContract() {
        SplittableRandom r = new SplittableRandom(42);
        for (int trial = 0; trial < 4000; trial++) {
            boolean transA = r.nextBoolean();
            boolean transB = r.nextBoolean();
            int m = r.nextInt(0, 7);
            int n = r.nextInt(0, 7);
            int k = r.nextInt(0, 6);
            int batch = r.nextInt(1, 4);
            int lda = (transA ? m : k) + r.nextInt(0, 3);
            int ldb = (transB ? k : n) + r.nextInt(0, 3);
            int ldc = n + r.nextInt(0, 3);
            int rowsA = transA ? k : m;
            int rowsB = transB ? n : k;
            long sizeA1 = rowsA == 0 ? 0 : (long) (rowsA - 1) * lda + (transA ? m : k);
            long sizeB1 = rowsB == 0 ? 0 : (long) (rowsB - 1) * ldb + (transB ? k : n);
            long strideA = r.nextInt(4) == 0 ? 0 : sizeA1 + r.nextInt(0, 3);
            long strideB = r.nextInt(4) == 0 ? 0 : sizeB1 + r.nextInt(0, 3);
            // C either in consecutive blocks or interleaved row by row ([rows, batch, n]), as the schedule does for directions.
            boolean interleaved = r.nextBoolean() && batch > 1;
            if (interleaved) ldc = batch * n + r.nextInt(0, 2);
            long strideC = interleaved ? n : (m == 0 ? 0 : (long) (m - 1) * ldc + n) + r.nextInt(0, 3);
            long offA = r.nextInt(0, 3);
            long offB = r.nextInt(0, 3);
            long offC = r.nextInt(0, 3);
            float alpha = r.nextBoolean() ? 1f : (float) r.nextDouble(-2, 2);
            float beta = r.nextInt(3) == 0 ? 0f : (float) r.nextDouble(-2, 2);

            double[] a = fill(r, offA + (batch - 1) * strideA + sizeA1 + 2);
            double[] b = fill(r, offB + (batch - 1) * strideB + sizeB1 + 2);
            double[] c0 = fill(r, offC + (batch - 1) * strideC + (long) Math.max(m, 1) * ldc + 2);
            if (beta == 0f) {
                // beta == 0 must overwrite without reading: NaN in C must not propagate.
                for (int q = 0; q < batch; q++)
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) c0[(int) (offC + q * strideC + (long) i * ldc + j)] = Double.NaN;
            }
            double[] expected = c0.clone();
            for (int q = 0; q < batch; q++) {
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double sum = 0;
                        for (int p = 0; p < k; p++) {
                            double av = transA ? a[(int) (offA + q * strideA + (long) p * lda + i)] : a[(int) (offA + q * strideA + (long) i * lda + p)];
                            double bv = transB ? b[(int) (offB + q * strideB + (long) j * ldb + p)] : b[(int) (offB + q * strideB + (long) p * ldb + j)];
                            sum += av * bv;
                        }
                        int o = (int) (offC + q * strideC + (long) i * ldc + j);
                        expected[o] = alpha * sum + (beta == 0f ? 0 : beta * expected[o]);
                    }
                }
            }

            double[] got = c0.clone();
            String where = "trial " + trial + ": transA=" + transA + " transB=" + transB + " m=" + m + " n=" + n + " k=" + k
                    + " lda=" + lda + " ldb=" + ldb + " ldc=" + ldc + " batch=" + batch + " strides " + strideA + "/" + strideB + "/" + strideC;
            if (m > 0 && n > 0) {
                CublasGemm g = CublasGemm.of(transA, transB, m, n, k, lda, ldb, ldc);
                checkCublasArguments(g, where);
                columnMajorGemm(g, alpha, b, offB, strideB, a, offA, strideA, beta, got, offC, strideC, batch);
            }
            for (int i = 0; i < expected.length; i++) {
                boolean same = Double.compare(expected[i], got[i]) == 0 || Math.abs(expected[i] - got[i]) <= 1e-12;
                assertTrue(same, where + ": C[" + i + "] expected " + expected[i] + ", got " + got[i] + "\n" + Arrays.toString(got));
            }
        }
    }

    /** cuBLAS's documented rules for sgemm: leading dimensions cover the stored rows of each operand. */
    private static void checkCublasArguments(CublasGemm g, String where) {
        int rowsFirst = g.transFirst() ? g.k() : g.m();
        int rowsSecond = g.transSecond() ? g.n() : g.k();
        assertTrue(g.ldFirst() >= Math.max(1, rowsFirst), where + ": lda for cuBLAS " + g.ldFirst() + " < max(1, " + rowsFirst + ")");
        assertTrue(g.ldSecond() >= Math.max(1, rowsSecond), where + ": ldb for cuBLAS " + g.ldSecond() + " < max(1, " + rowsSecond + ")");
        assertTrue(g.ldc() >= Math.max(1, g.m()), where + ": ldc for cuBLAS " + g.ldc() + " < max(1, " + g.m() + ")");
    }

    /**
     * cublasSgemmStridedBatched as documented: column-major, {@code C[i + j*ldc] = alpha * sum_p op(X)[i,p] op(Y)[p,j]
     * + beta * C}, with {@code op(X)[i,p] = X[i + p*ld]} or, transposed, {@code X[p + i*ld]}; beta == 0 does not read C.
     */
    private static void columnMajorGemm(CublasGemm g, float alpha, double[] x, long offX, long strideX,
                                        double[] y, long offY, long strideY, float beta, double[] c, long offC, long strideC, int batch) {
        for (int q = 0; q < batch; q++) {
            for (int i = 0; i < g.m(); i++) {
                for (int j = 0; j < g.n(); j++) {
                    double sum = 0;
                    for (int p = 0; p < g.k(); p++) {
                        double xv = g.transFirst() ? x[(int) (offX + q * strideX + p + (long) i * g.ldFirst())]
                                : x[(int) (offX + q * strideX + i + (long) p * g.ldFirst())];
                        double yv = g.transSecond() ? y[(int) (offY + q * strideY + j + (long) p * g.ldSecond())]
                                : y[(int) (offY + q * strideY + p + (long) j * g.ldSecond())];
                        sum += yv * xv;
                    }
                    int o = (int) (offC + q * strideC + i + (long) j * g.ldc());
                    c[o] = alpha * sum + (beta == 0f ? 0 : beta * c[o]);
                }
            }
        }
    }

    private static double[] fill(SplittableRandom r, long n) {
        double[] d = new double[(int) n];
        for (int i = 0; i < d.length; i++) d[i] = r.nextInt(-8, 9) / 4.0;
        return d;
    }
}
