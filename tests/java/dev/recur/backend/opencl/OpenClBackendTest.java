package dev.recur.backend.opencl;

import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.schedule.ScheduledRnn;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The OpenCL backend's own contract: availability, buffers, GEMM (both implementations, every transpose,
 * offsets, leading dimensions, batches, beta), the program cache, build failures with their log, and
 * allocation failures that name the sizes and free what the call had allocated. With {@code recur.ci=true}
 * a missing OpenCL fails these tests instead of skipping them.
 */
class OpenClBackendTest {
    static OpenClBackend be;

    static void requireOpenCl() {
        BackendProvider.Availability a = OpenClBackend.PROVIDER.probe();
        if (!a.available()) {
            if ("true".equalsIgnoreCase(System.getProperty("recur.ci", "").trim())) {
                Assertions.fail("recur.ci=true requires OpenCL, but it is unavailable: " + a.detail());
            }
            Assumptions.abort("skipped: OpenCL unavailable: " + a.detail());
        }
    }

    @BeforeAll
    static void open() {
        requireOpenCl();
        be = OpenClBackend.open("hand");
    }

    @AfterAll
    static void close() {
        if (be != null) be.close();
    }

    @Test
    void isRegisteredBeforeReferenceAndReportsItsDevice() {
        int opencl = -1, reference = -1, i = 0;
        for (BackendProvider p : Backends.providers()) {
            if (p.name().equals("opencl")) opencl = i;
            if (p.name().equals("reference")) reference = i;
            i++;
        }
        assertTrue(opencl >= 0 && opencl < reference, "opencl registered before reference");
        BackendProvider.Availability a = OpenClBackend.PROVIDER.probe();
        assertTrue(a.detail().contains(OpenClDevice.get().deviceName), a.detail());
        assertTrue(be.deviceName().contains(OpenClDevice.get().deviceName));
    }

    @Test
    void buffersRoundTripWithOffsetsFillAndCopy() {
        long start = be.memoryInUse();
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 10); DeviceBuffer g = be.allocate(DeviceBuffer.Type.F32, 10);
             DeviceBuffer n = be.allocate(DeviceBuffer.Type.I32, 4)) {
            assertEquals(start + 96, be.memoryInUse());
            be.fill(f, 0, 10, -1.5);
            be.upload(new float[] {9, 1, 2, 3}, 1, f, 4, 3);
            be.fill(g, 0, 10, 7);
            be.copy(f, 3, g, 0, 4);
            float[] out = new float[12];
            be.download(g, 0, out, 2, 10);
            assertArrayEquals(new float[] {0, 0, -1.5f, 1, 2, 3, 7, 7, 7, 7, 7, 7}, out);
            be.upload(new int[] {5, -6, 7, 8}, 0, n, 0, 4);
            be.fill(n, 3, 1, 42);
            int[] iv = new int[4];
            be.download(n, 0, iv, 0, 4);
            assertArrayEquals(new int[] {5, -6, 7, 42}, iv);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.upload(new float[4], 0, f, 8, 4));
            assertTrue(e.getMessage().contains("dst") && e.getMessage().contains("[8, 12)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.upload(new float[4], 0, n, 0, 4));
            assertTrue(e.getMessage().contains("F32"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.upload((float[]) null, 0, f, 0, 4));
            assertEquals("src: must not be null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.downloadDoubles(f, 0, new double[2], 1, 2));
            assertEquals("dst: elements [1, 3) outside an array of 2", e.getMessage());
            double[] dv = {0.25, -1.5};
            be.uploadDoubles(dv, 0, f, 2, 2);
            double[] back = new double[2];
            be.downloadDoubles(f, 2, back, 0, 2);
            assertArrayEquals(dv, back);
        }
        assertEquals(start, be.memoryInUse());
    }

    /** C = alpha op(A) op(B) + beta C in float64, for the same index rules as the contract. */
    static double[] refGemm(boolean ta, boolean tb, int m, int n, int k, double alpha, float[] a, int offA, int lda,
                            float[] b, int offB, int ldb, double beta, float[] c, int offC, int ldc) {
        double[] out = new double[c.length];
        for (int i = 0; i < c.length; i++) out[i] = c[i];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double av = ta ? a[offA + p * lda + i] : a[offA + i * lda + p];
                    double bv = tb ? b[offB + j * ldb + p] : b[offB + p * ldb + j];
                    s += av * bv;
                }
                int o = offC + i * ldc + j;
                out[o] = alpha * s + (beta == 0 ? 0 : beta * c[o]);
            }
        }
        return out;
    }

    static void gemmCases(OpenClBackend g) {
        SplittableRandom r = new SplittableRandom(5);
        // {1, 48, 20}: one row in the vector kernel (rows past M repeat the last one). The last shape is big enough
        // (m*n*k >= 2^22) for the hand GEMM to pack a transposed A first. {101, 64, 520} and {203, 48, 700}: whole
        // 16-column panels, a partial last block of 6 rows, several work-groups of row blocks and K over more than
        // one 256-deep chunk of the staged B panel (the second also packs A^T, with partial 8 x 8 tiles).
        int[][] shapes = {{1, 1, 1}, {1, 48, 20}, {7, 9, 5}, {17, 33, 12}, {32, 40, 64}, {9, 3, 0}, {130, 70, 500},
                {101, 64, 520}, {203, 48, 700}};
        for (int[] sh : shapes) {
            int m = sh[0], n = sh[1], k = sh[2];
            for (int variant = 0; variant < 4; variant++) {
                boolean ta = (variant & 2) != 0, tb = (variant & 1) != 0;
                int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                int offA = 5, offB = 2, offC = 3, batch = 3;
                int sa = (ta ? k : m) * lda + 1, sb = (tb ? n : k) * ldb, sc = m * ldc + 4;
                float[] a = new float[offA + batch * sa + 8], b = new float[offB + batch * sb + 8], c = new float[offC + batch * sc + 8];
                for (int i = 0; i < a.length; i++) a[i] = (float) r.nextDouble(-1, 1);
                for (int i = 0; i < b.length; i++) b[i] = (float) r.nextDouble(-1, 1);
                for (double beta : new double[] {0, 0.5}) {
                    for (int i = 0; i < c.length; i++) c[i] = beta == 0 ? Float.NaN : (float) r.nextDouble(-1, 1);
                    try (DeviceBuffer da = g.allocate(DeviceBuffer.Type.F32, a.length);
                         DeviceBuffer db = g.allocate(DeviceBuffer.Type.F32, b.length);
                         DeviceBuffer dc = g.allocate(DeviceBuffer.Type.F32, c.length)) {
                        g.upload(a, 0, da, 0, a.length);
                        g.upload(b, 0, db, 0, b.length);
                        g.upload(c, 0, dc, 0, c.length);
                        g.gemmStridedBatched(ta, tb, m, n, k, 1.5f, da, offA, lda, sa, db, offB, ldb, sb, (float) beta, dc,
                                offC, ldc, sc, batch);
                        float[] got = new float[c.length];
                        g.download(dc, 0, got, 0, c.length);
                        double[] want = new double[c.length];
                        for (int i = 0; i < c.length; i++) want[i] = c[i];
                        for (int q = 0; q < batch; q++) {
                            double[] one = refGemm(ta, tb, m, n, k, 1.5, a, offA + q * sa, lda, b, offB + q * sb, ldb, beta,
                                    c, offC + q * sc, ldc);
                            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
                                int o = offC + q * sc + i * ldc + j;
                                want[o] = one[o];
                            }
                        }
                        for (int i = 0; i < c.length; i++) {
                            boolean bothNaN = Double.isNaN(want[i]) && Float.isNaN(got[i]);
                            // float32 rounding grows at most linearly with k; an indexing error is O(1).
                            double tol = 2.4e-7 * Math.max(8, k) * Math.max(1, Math.abs(want[i]));
                            if (!bothNaN && !(Math.abs(want[i] - got[i]) <= tol)) {
                                throw new AssertionError(g.gemmName() + " m=" + m + " n=" + n + " k=" + k + " ta=" + ta + " tb=" + tb
                                        + " beta=" + beta + ": C[" + i + "] expected " + want[i] + ", got " + got[i]);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void handWrittenGemmMatchesFloat64() {
        gemmCases(be);
    }

    @Test
    void clblastGemmMatchesFloat64() {
        try (OpenClBackend cl = OpenClBackend.open("clblast")) {
            gemmCases(cl);
        }
    }

    /**
     * col_sum's OpenCL path sums 16 columns per work item as float8 vectors, two rows at a time: odd and even row
     * counts, whole and partial 16-column groups, and beta, against float64.
     */
    @Test
    void colSumMatchesFloat64() {
        SplittableRandom r = new SplittableRandom(11);
        int[][] shapes = {{1, 1}, {7, 16}, {33, 40}, {100, 1024}, {1600, 77}};
        for (int[] sh : shapes) {
            int m = sh[0], n = sh[1];
            float[] src = new float[m * n], dst = new float[n];
            for (int i = 0; i < src.length; i++) src[i] = (float) r.nextDouble(-1, 1);
            for (int i = 0; i < n; i++) dst[i] = (float) r.nextDouble(-1, 1);
            for (float beta : new float[] {0f, 0.5f}) {
                try (DeviceBuffer ds = be.allocate(DeviceBuffer.Type.F32, src.length);
                     DeviceBuffer dd = be.allocate(DeviceBuffer.Type.F32, n)) {
                    be.upload(src, 0, ds, 0, src.length);
                    be.upload(dst, 0, dd, 0, n);
                    be.launch("col_sum", new long[] {n}, m, n, ds, dd, beta);
                    float[] got = new float[n];
                    be.download(dd, 0, got, 0, n);
                    for (int j = 0; j < n; j++) {
                        double want = beta * (double) dst[j];
                        for (int i = 0; i < m; i++) want += src[i * n + j];
                        assertEquals(want, got[j], 2.4e-7 * Math.max(8, m),
                                "col_sum m=" + m + " n=" + n + " beta=" + beta + ": dst[" + j + "]");
                    }
                }
            }
        }
    }

    @Test
    void kernelProgramIsBuiltOncePerContext() {
        long before = OpenClDevice.get().builds.get();
        for (int i = 0; i < 3; i++) {
            try (OpenClBackend b = OpenClBackend.open("hand")) {
                assertTrue(b.memoryInUse() == 0);
            }
        }
        assertEquals(before, OpenClDevice.get().builds.get(), "programs built while opening 3 backends");
    }

    @Test
    void buildFailureCarriesTheBuildLog() {
        KernelBuildException e = assertThrows(KernelBuildException.class,
                () -> OpenClDevice.get().build(new String[] {"__kernel void broken(__global float* x) { x[0] = undefined_name; }"},
                        "a broken test kernel"));
        assertTrue(e.getMessage().contains("a broken test kernel"), e.getMessage());
        assertTrue(e.buildLog().contains("undefined_name"), "build log names the error: " + e.buildLog());
    }

    @ParameterizedTest
    @ValueSource(longs = {1L << 40, Long.MAX_VALUE / 8})
    void allocationFailureNamesRequestedAndAvailableBytes(long elements) {
        long start = be.memoryInUse();
        DeviceBackend.OutOfDeviceMemoryException e = assertThrows(DeviceBackend.OutOfDeviceMemoryException.class,
                () -> be.allocate(DeviceBuffer.Type.F32, elements));
        assertEquals(elements * 4, e.requestedBytes());
        assertTrue(e.getMessage().contains(Long.toString(elements * 4)) && e.getMessage().contains(Long.toString(e.availableBytes())),
                e.getMessage());
        assertEquals(start, be.memoryInUse());
    }

    @Test
    void failedEngineCreationFreesWhatItAllocated() {
        long start = be.memoryInUse();
        // weight_ih (input size 1) fits, weight_hh [4H, H] (16 MiB) does not: the constructor must free the first
        // ones. A cap on this backend rather than the device's size, which PoCL derives from the free host memory.
        be.setMemoryLimit(start + (1 << 20));
        try {
            RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 1, 1024).build();
            DeviceBackend.OutOfDeviceMemoryException e = assertThrows(DeviceBackend.OutOfDeviceMemoryException.class,
                    () -> new ScheduledRnn(be, cfg));
            assertTrue(e.requestedBytes() > e.availableBytes(), e.getMessage());
            assertEquals(start, be.memoryInUse(), "device memory after the failed construction");
        } finally {
            be.setMemoryLimit(Long.getLong(OpenClBackend.MEMORY_LIMIT_PROPERTY, Long.MAX_VALUE));
        }
    }

    @Test
    void failedForwardFreesWhatItAllocated() {
        // x and the states fit; the per-step activations of 4096 steps x 64 sequences x 4*1024 gates do not. A cap
        // 1.5 GiB above what the network holds makes that so on every device: PoCL on a machine with 23 GiB of RAM
        // reports 14.5 GiB of global memory, where the 4.3 GB input projection would fit and nothing would fail.
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 1, 1024).build();
        try (dev.recur.nn.Rnn rnn = dev.recur.nn.Rnn.create(cfg, be, dev.recur.engine.RnnWeights.init(cfg, 1))) {
            be.setMemoryLimit(be.memoryInUse() + (3L << 29));
            dev.recur.tensor.Tensor x = dev.recur.tensor.Tensor.zeros(4096, 64, 1);
            for (boolean training : new boolean[] {false, true}) {
                long start = be.memoryInUse();
                DeviceBackend.OutOfDeviceMemoryException e = assertThrows(DeviceBackend.OutOfDeviceMemoryException.class,
                        () -> {
                            if (training) rnn.forwardTraining(dev.recur.nn.RnnInput.of(x), 1).close();
                            else rnn.forward(dev.recur.nn.RnnInput.of(x)).close();
                        });
                assertTrue(e.getMessage().contains("bytes"), e.getMessage());
                assertEquals(start, be.memoryInUse(), "device memory after a failed " + (training ? "training " : "")
                        + "forward");
            }
        } finally {
            be.setMemoryLimit(Long.getLong(OpenClBackend.MEMORY_LIMIT_PROPERTY, Long.MAX_VALUE));
        }
    }

    @Test
    void kernelArgumentsChangeBetweenLaunchesAndClosedBuffersAreRefused() {
        try (DeviceBuffer a = be.allocate(DeviceBuffer.Type.F32, 6); DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 6);
             DeviceBuffer dst = be.allocate(DeviceBuffer.Type.F32, 3)) {
            be.upload(new float[] {1, 2, 3, 4, 5, 6}, 0, a, 0, 6);
            be.upload(new float[] {10, 20, 30, 40, 50, 60}, 0, b, 0, 6);
            float[] out = new float[3];
            be.launch(dev.recur.backend.Kernels.COL_SUM, new long[] {3}, 2, 3, a, dst, 0f);
            be.download(dst, 0, out, 0, 3);
            assertArrayEquals(new float[] {5, 7, 9}, out);
            // Same kernel, another source buffer, same destination, then another beta and row count.
            be.launch(dev.recur.backend.Kernels.COL_SUM, new long[] {3}, 2, 3, b, dst, 0f);
            be.download(dst, 0, out, 0, 3);
            assertArrayEquals(new float[] {50, 70, 90}, out);
            be.launch(dev.recur.backend.Kernels.COL_SUM, new long[] {3}, 1, 3, b, dst, 1f);
            be.download(dst, 0, out, 0, 3);
            assertArrayEquals(new float[] {60, 90, 120}, out);
            a.close();
            assertThrows(IllegalStateException.class,
                    () -> be.launch(dev.recur.backend.Kernels.COL_SUM, new long[] {3}, 2, 3, a, dst, 0f));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> be.launch(dev.recur.backend.Kernels.COL_SUM, new long[] {3}, 2, 3, b, dst, 0));
            assertTrue(e.getMessage().contains("argument 4") && e.getMessage().contains("Float"), e.getMessage());
        }
    }

    @Test
    void closedBufferIsRefused() {
        DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 4);
        f.close();
        f.close();
        assertTrue(f.isClosed());
        assertThrows(IllegalStateException.class, () -> be.fill(f, 0, 4, 0));
    }
}
