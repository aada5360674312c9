package dev.recur.backend.cuda;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.device.DeviceRows;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The CUDA backend against the {@link DeviceBackend} contract: copies, fill, GEMMs (including strided,
 * interleaved and {@code k == 0} cases), a kernel launch with exact results, argument checks naming the
 * argument, allocation failure naming the bytes, and memory returning to its start after 10,000
 * allocations. Runs where a CUDA device is present and is skipped with the probe's reason elsewhere
 * (through {@link DeviceRows}, like the parity suite's cuda rows).
 */
class CudaBackendContractTest {
    /** The row under test; the same checks hold for every device backend. */
    private static final String ROW = "cuda";

    private static DeviceBackend be() {
        return DeviceRows.backend(ROW);
    }

    @Test
    void uploadDownloadFillCopyRoundTrip() {
        DeviceBackend be = be();
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 1000); DeviceBuffer g = be.allocate(DeviceBuffer.Type.F32, 1000);
             DeviceBuffer n = be.allocate(DeviceBuffer.Type.I32, 10)) {
            float[] src = new float[1200];
            for (int i = 0; i < src.length; i++) src[i] = i * 0.5f - 7f;
            be.fill(f, 0, 1000, -1.25);
            be.upload(src, 100, f, 10, 900);
            be.fill(f, 500, 20, 3.0);
            be.copy(f, 0, g, 0, 1000);
            be.fill(f, 0, 1000, 0.0);
            float[] got = new float[1002];
            be.download(g, 0, got, 2, 1000);
            for (int i = 0; i < 1000; i++) {
                float want = (i >= 500 && i < 520) ? 3f : (i < 10 || i >= 910) ? -1.25f : src[100 + i - 10];
                assertEquals(want, got[2 + i], "g[" + i + "]");
            }
            int[] ints = {5, -6, 7, Integer.MIN_VALUE, Integer.MAX_VALUE, 0, 1, 2, 3, 4};
            be.upload(ints, 0, n, 0, 10);
            be.fill(n, 8, 2, -3);
            int[] back = new int[10];
            be.download(n, 0, back, 0, 10);
            assertEquals(List.of(5, -6, 7, Integer.MIN_VALUE, Integer.MAX_VALUE, 0, 1, 2, -3, -3), boxed(back), "I32 buffer");
        }
    }

    @Test
    void gemmMatchesTheRowMajorDefinition() {
        DeviceBackend be = be();
        SplittableRandom r = new SplittableRandom(3);
        for (int trial = 0; trial < 60; trial++) {
            boolean ta = r.nextBoolean();
            boolean tb = r.nextBoolean();
            int m = r.nextInt(1, 40);
            int n = r.nextInt(1, 40);
            int k = trial % 10 == 0 ? 0 : r.nextInt(1, 50);
            int batch = r.nextInt(1, 4);
            int lda = Math.max(1, ta ? m : k) + r.nextInt(0, 3);
            int ldb = Math.max(1, tb ? k : n) + r.nextInt(0, 3);
            boolean interleaved = batch > 1 && r.nextBoolean();
            int ldc = interleaved ? batch * n : n + r.nextInt(0, 3);
            long strideA = (long) (ta ? k : m) * lda + r.nextInt(0, 3);
            long strideB = r.nextInt(3) == 0 ? 0 : (long) (tb ? n : k) * ldb;
            long strideC = interleaved ? n : (long) m * ldc;
            float alpha = (float) r.nextDouble(-1.5, 1.5);
            float beta = trial % 3 == 0 ? 0f : (float) r.nextDouble(-1, 1);
            float[] a = random(r, (int) (strideA * batch + 1));
            float[] b = random(r, (int) (Math.max(strideB, (long) (tb ? n : k) * ldb) * batch + 1));
            float[] c = random(r, (int) (strideC * (batch - 1) + (long) m * ldc + 3));
            if (beta == 0f) java.util.Arrays.fill(c, Float.NaN);
            double[] want = new double[c.length];
            for (int i = 0; i < c.length; i++) want[i] = c[i];
            for (int q = 0; q < batch; q++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int p = 0; p < k; p++) {
                            double av = ta ? a[(int) (q * strideA + (long) p * lda + i)] : a[(int) (q * strideA + (long) i * lda + p)];
                            double bv = tb ? b[(int) (q * strideB + (long) j * ldb + p)] : b[(int) (q * strideB + (long) p * ldb + j)];
                            s += av * bv;
                        }
                        int o = (int) (q * strideC + (long) i * ldc + j);
                        want[o] = alpha * s + (beta == 0f ? 0 : beta * (double) c[o]);
                    }
            try (DeviceBuffer da = be.allocate(DeviceBuffer.Type.F32, a.length); DeviceBuffer db = be.allocate(DeviceBuffer.Type.F32, b.length);
                 DeviceBuffer dc = be.allocate(DeviceBuffer.Type.F32, c.length)) {
                be.upload(a, 0, da, 0, a.length);
                be.upload(b, 0, db, 0, b.length);
                be.upload(c, 0, dc, 0, c.length);
                if (batch == 1 && r.nextBoolean()) be.gemm(ta, tb, m, n, k, alpha, da, 0, lda, db, 0, ldb, beta, dc, 0, ldc);
                else be.gemmStridedBatched(ta, tb, m, n, k, alpha, da, 0, lda, strideA, db, 0, ldb, strideB, beta, dc, 0, ldc, strideC, batch);
                float[] got = new float[c.length];
                be.download(dc, 0, got, 0, got.length);
                String where = "trial " + trial + " (transA=" + ta + ", transB=" + tb + ", m=" + m + ", n=" + n + ", k=" + k
                        + ", batch=" + batch + (interleaved ? ", interleaved C" : "") + ")";
                for (int i = 0; i < c.length; i++) {
                    boolean untouchedNaN = Double.isNaN(want[i]) && Float.isNaN(got[i]);
                    if (!untouchedNaN && !(Math.abs(want[i] - got[i]) <= 1e-4 * Math.max(1, Math.abs(want[i])))) {
                        fail(where + ": C[" + i + "] expected " + want[i] + ", got " + got[i]);
                    }
                }
            }
        }
    }

    @Test
    void colSumKernelGivesExactSums() {
        DeviceBackend be = be();
        int rows = 37;
        int cols = 300;
        float[] src = new float[rows * cols];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) src[i * cols + j] = (i - j % 7) * 0.25f;
        try (DeviceBuffer s = be.allocate(DeviceBuffer.Type.F32, src.length); DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, cols)) {
            be.upload(src, 0, s, 0, src.length);
            be.fill(d, 0, cols, 2.0);
            be.launch(Kernels.COL_SUM, new long[] {cols}, rows, cols, s, d, 0.5f);
            float[] got = new float[cols];
            be.download(d, 0, got, 0, cols);
            for (int j = 0; j < cols; j++) {
                double want = 1.0;
                for (int i = 0; i < rows; i++) want += (i - j % 7) * 0.25;
                assertEquals((float) want, got[j], "col_sum dst[" + j + "]");
            }
        }
    }

    @Test
    void badLaunchesNameTheKernelAndArgument() {
        DeviceBackend be = be();
        try (DeviceBuffer s = be.allocate(DeviceBuffer.Type.F32, 4); DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.launch("no_such_kernel", new long[] {1}));
            assertTrue(e.getMessage().contains("no_such_kernel"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.launch(Kernels.COL_SUM, new long[] {2}, 2, 2, s, d));
            assertTrue(e.getMessage().contains("col_sum") && e.getMessage().contains("expected 5 arguments, got 4"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.launch(Kernels.COL_SUM, new long[] {2}, 2, 2, s, d, 0));
            assertTrue(e.getMessage().contains("col_sum") && e.getMessage().contains("argument 4"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.launch(Kernels.COL_SUM, new long[] {2}, 2, s, s, d, 0f));
            assertTrue(e.getMessage().contains("argument 1"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.launch(Kernels.COL_SUM, new long[] {0}, 2, 2, s, d, 0f));
            assertTrue(e.getMessage().contains("globalSize[0]"), e.getMessage());
        }
    }

    @Test
    void badBuffersAreRejectedBeforeAnythingRuns() {
        DeviceBackend be = be();
        DeviceBuffer foreign = new DeviceBuffer() {
            @Override
            public Type type() {
                return Type.F32;
            }

            @Override
            public long size() {
                return 8;
            }

            @Override
            public boolean isClosed() {
                return false;
            }

            @Override
            public void close() {
            }
        };
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 8); DeviceBuffer n = be.allocate(DeviceBuffer.Type.I32, 8)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.upload(new float[8], 0, foreign, 0, 8));
            assertTrue(e.getMessage().contains("dst") && e.getMessage().contains("another backend"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.upload(new float[8], 0, n, 0, 8));
            assertTrue(e.getMessage().contains("dst") && e.getMessage().contains("F32"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.upload(new float[8], 0, f, 4, 8));
            assertTrue(e.getMessage().contains("dst") && e.getMessage().contains("[4, 12)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.download(f, 0, new float[4], 0, 8));
            assertTrue(e.getMessage().contains("dst"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.gemm(false, false, 3, 3, 3, 1f, f, 0, 3, f, 0, 3, 0f, f, 0, 3));
            assertTrue(e.getMessage().contains("a: the 3 x 3 matrix at offset 0 with ld 3 reaches element 8"), e.getMessage());
        }
        DeviceBuffer closed = be.allocate(DeviceBuffer.Type.F32, 4);
        closed.close();
        closed.close();
        assertThrows(IllegalStateException.class, () -> be.download(closed, 0, new float[4], 0, 4), "download from a closed buffer");
    }

    @Test
    void allocationBeyondTheDeviceNamesRequestedAndAvailableBytes() {
        DeviceBackend be = be();
        long huge = 1L << 46; // 64 TiB
        DeviceBackend.OutOfDeviceMemoryException e = assertThrows(DeviceBackend.OutOfDeviceMemoryException.class,
                () -> be.allocate(DeviceBuffer.Type.F32, huge / 4));
        assertEquals(huge, e.requestedBytes(), "requested bytes");
        assertTrue(e.availableBytes() >= 0 && e.availableBytes() < huge, "available bytes " + e.availableBytes());
        assertTrue(e.getMessage().contains(Long.toString(huge)) && e.getMessage().contains(Long.toString(e.availableBytes())), e.getMessage());
    }

    @Test
    void memoryReturnsToItsStartAfterTenThousandBuffers() {
        DeviceBackend be = be();
        long start = be.memoryInUse();
        for (int i = 0; i < 10_000; i++) {
            List<DeviceBuffer> bufs = new ArrayList<>();
            bufs.add(be.allocate(DeviceBuffer.Type.F32, 1 + i % 97));
            bufs.add(be.allocate(DeviceBuffer.Type.I32, 3));
            assertEquals(start + 4L * (1 + i % 97) + 12, be.memoryInUse(), "memory in use with two buffers, round " + i);
            for (DeviceBuffer b : bufs) b.close();
        }
        be.finish();
        assertEquals(start, be.memoryInUse(), "memory in use after 10,000 rounds");
    }

    private static float[] random(SplittableRandom r, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) r.nextDouble(-1, 1);
        return f;
    }

    private static List<Integer> boxed(int[] a) {
        List<Integer> l = new ArrayList<>();
        for (int v : a) l.add(v);
        return l;
    }
}
