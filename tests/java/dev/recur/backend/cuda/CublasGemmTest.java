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
                CublasGemm g = CublasGemm.of(transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch);
                checkCublasArguments(g, where);
                columnMajorGemm(g, alpha, b, offB, a, offA, beta, got, offC);
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
     * cublasSgemmStridedBatched as documented, from the record alone (its strides and batch count):
     * column-major, {@code C[i + j*ldc] = alpha * sum_p op(X)[i,p] op(Y)[p,j] + beta * C}, with
     * {@code op(X)[i,p] = X[i + p*ld]} or, transposed, {@code X[p + i*ld]}; beta == 0 does not read C. {@code x} and
     * {@code offX} are where the caller points the first operand, {@code y} the second.
     */
    static void columnMajorGemm(CublasGemm g, float alpha, double[] x, long offX,
                                double[] y, long offY, float beta, double[] c, long offC) {
        long strideX = g.strideFirst(), strideY = g.strideSecond(), strideC = g.strideC();
        for (int q = 0; q < g.batch(); q++) {
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

    /**
     * The same mapping against the cpu backend's own row-major GEMM (the GEMM every float32 result here is checked
     * with): random shapes, transposes, leading dimensions, offsets and strides, including stride 0 for A or B and C
     * interleaved row by row. The cpu backend computes in float32 and the interpretation of the cuBLAS call in float64
     * from the same float32 inputs, so they agree to float32 rounding of the sums.
     */
    @Test
    void columnMajorCallMatchesTheCpuBackendsGemm() {
        SplittableRandom r = new SplittableRandom(7);
        try (var backend = dev.recur.backend.Backends.open("cpu")) {
            var cpu = (dev.recur.backend.DeviceBackend) backend;
            for (int trial = 0; trial < 300; trial++) {
                boolean transA = r.nextBoolean(), transB = r.nextBoolean();
                int m = r.nextInt(1, 40), n = r.nextInt(1, 40), k = r.nextInt(0, 45), batch = r.nextInt(1, 4);
                int lda = Math.max(1, transA ? m : k) + r.nextInt(0, 4);
                int ldb = Math.max(1, transB ? k : n) + r.nextInt(0, 4);
                boolean interleaved = batch > 1 && r.nextBoolean();
                int ldc = interleaved ? batch * n + r.nextInt(0, 2) : n + r.nextInt(0, 4);
                long sizeA = (long) (transA ? k : m) * lda, sizeB = (long) (transB ? n : k) * ldb;
                long strideA = r.nextInt(4) == 0 ? 0 : sizeA + r.nextInt(0, 5);
                long strideB = r.nextInt(4) == 0 ? 0 : sizeB + r.nextInt(0, 5);
                long strideC = interleaved ? n : (long) m * ldc + r.nextInt(0, 5);
                long offA = r.nextInt(0, 4), offB = r.nextInt(0, 4), offC = r.nextInt(0, 4);
                float alpha = (float) r.nextDouble(-2, 2);
                float beta = r.nextInt(3) == 0 ? 0f : (float) r.nextDouble(-2, 2);
                float[] a = randomFloats(r, offA + (batch - 1) * strideA + Math.max(sizeA, 1) + 1);
                float[] b = randomFloats(r, offB + (batch - 1) * strideB + Math.max(sizeB, 1) + 1);
                float[] c = randomFloats(r, offC + (batch - 1) * strideC + (long) m * ldc + 1);
                String where = "trial " + trial + ": transA=" + transA + " transB=" + transB + " m=" + m + " n=" + n + " k=" + k
                        + " lda=" + lda + " ldb=" + ldb + " ldc=" + ldc + " batch=" + batch + " strides " + strideA + "/" + strideB + "/" + strideC
                        + (interleaved ? " (C interleaved)" : "");

                float[] got = new float[c.length];
                try (var da = cpu.allocate(dev.recur.backend.DeviceBuffer.Type.F32, a.length);
                     var db = cpu.allocate(dev.recur.backend.DeviceBuffer.Type.F32, b.length);
                     var dc = cpu.allocate(dev.recur.backend.DeviceBuffer.Type.F32, c.length)) {
                    cpu.upload(a, 0, da, 0, a.length);
                    cpu.upload(b, 0, db, 0, b.length);
                    cpu.upload(c, 0, dc, 0, c.length);
                    cpu.gemmStridedBatched(transA, transB, m, n, k, alpha, da, offA, lda, strideA, db, offB, ldb, strideB,
                            beta, dc, offC, ldc, strideC, batch);
                    cpu.download(dc, 0, got, 0, got.length);
                }

                CublasGemm g = CublasGemm.of(transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch);
                checkCublasArguments(g, where);
                double[] cublas = toDoubles(c);
                // As the backend calls it: the first operand at B's offset, the second at A's.
                columnMajorGemm(g, alpha, toDoubles(b), offB, toDoubles(a), offA, beta, cublas, offC);
                for (int i = 0; i < c.length; i++) {
                    double tol = 1e-5 * Math.max(1, Math.abs(cublas[i])) * Math.max(1, k);
                    assertTrue(Math.abs(cublas[i] - got[i]) <= tol, where + ": C[" + i + "] cuBLAS call gives " + cublas[i]
                            + ", the cpu backend " + got[i]);
                }
            }
        }
    }

    private static float[] randomFloats(SplittableRandom r, long n) {
        float[] f = new float[(int) n];
        for (int i = 0; i < f.length; i++) f[i] = (float) r.nextDouble(-1, 1);
        return f;
    }

    private static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    private static double[] fill(SplittableRandom r, long n) {
        double[] d = new double[(int) n];
        for (int i = 0; i < d.length; i++) d[i] = r.nextInt(-8, 9) / 4.0;
        return d;
    }
}
