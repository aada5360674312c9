package dev.recur.backend.cpu;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.config.DropoutMask;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The device-backend contract as the cpu backend implements it: memory, copies, GEMM and launches. */
class CpuBackendTest {
    private CpuBackend be;

    @BeforeEach
    void open() {
        be = CpuBackend.open(2);
    }

    @AfterEach
    void close() {
        be.close();
    }

    @Test
    void registeredAfterOpenClAndBeforeReference() {
        List<String> names = Backends.providers().stream().map(BackendProvider::name).toList();
        assertTrue(names.contains("cpu"), "providers " + names);
        int cpu = names.indexOf("cpu");
        assertEquals(names.size() - 2, cpu, "cpu comes just before reference in " + names);
        if (names.contains("opencl")) assertTrue(names.indexOf("opencl") < cpu, "opencl before cpu in " + names);
        if (names.contains("cuda")) assertTrue(names.indexOf("cuda") < cpu, "cuda before cpu in " + names);
        assertTrue(CpuBackend.PROVIDER.probe().available(), CpuBackend.PROVIDER.probe().detail());
        try (Backend b = Backends.open("cpu")) {
            assertTrue(b instanceof DeviceBackend, "cpu is a device backend: " + b.getClass());
            assertEquals("cpu", b.name());
        }
    }

    @Test
    void theSequenceSplitComesFromItsPropertyAndABadNameIsRefusedBeforeABackendOpens() {
        String key = CpuSeqKernels.Split.PROPERTY, old = System.getProperty(key);
        try {
            System.clearProperty(key);
            assertEquals(CpuSeqKernels.Split.AUTO, CpuSeqKernels.Split.fromProperty());
            System.setProperty(key, " Rows ");
            assertEquals(CpuSeqKernels.Split.ROWS, CpuSeqKernels.Split.fromProperty());
            System.setProperty(key, "diagonal");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CpuBackend.open(1));
            assertEquals(key + ": expected auto, rows or units, got 'diagonal'", e.getMessage());
        } finally {
            if (old == null) System.clearProperty(key);
            else System.setProperty(key, old);
        }
    }

    @Test
    void threadsComeFromThePropertyOrTheProcessors() {
        String old = System.getProperty(CpuBackend.THREADS_PROPERTY);
        try {
            System.clearProperty(CpuBackend.THREADS_PROPERTY);
            assertEquals(Runtime.getRuntime().availableProcessors(), CpuBackend.defaultThreads());
            System.setProperty(CpuBackend.THREADS_PROPERTY, "3");
            assertEquals(3, CpuBackend.defaultThreads());
            System.setProperty(CpuBackend.THREADS_PROPERTY, "zero");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, CpuBackend::defaultThreads);
            assertTrue(e.getMessage().contains(CpuBackend.THREADS_PROPERTY) && e.getMessage().contains("zero"), e.getMessage());
        } finally {
            if (old == null) System.clearProperty(CpuBackend.THREADS_PROPERTY);
            else System.setProperty(CpuBackend.THREADS_PROPERTY, old);
        }
        assertThrows(IllegalArgumentException.class, () -> CpuBackend.open(0));
        assertEquals(2, be.threads());
    }

    @Test
    void memoryIsCountedAndReturned() {
        long base = be.memoryInUse();
        DeviceBuffer a = be.allocate(DeviceBuffer.Type.F32, 1000);
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.I32, 10);
        assertEquals(base + 4040, be.memoryInUse(), "bytes in use with two buffers");
        a.close();
        a.close();
        assertEquals(base + 40, be.memoryInUse(), "bytes in use after closing one (twice)");
        assertTrue(a.isClosed());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.fill(a, 0, 1, 0));
        assertTrue(e.getMessage().contains("dst") && e.getMessage().contains("after close"), e.getMessage());
        be.close();
        assertTrue(b.isClosed(), "closing the backend closes its buffers");
        assertEquals(0, be.memoryInUse());
        assertThrows(IllegalStateException.class, () -> be.allocate(DeviceBuffer.Type.F32, 1));
    }

    @Test
    void allocationsThatCannotFitNameTheBytes() {
        var e = assertThrows(DeviceBackend.OutOfDeviceMemoryException.class,
                () -> be.allocate(DeviceBuffer.Type.F32, Long.MAX_VALUE / 8));
        assertTrue(e.getMessage().contains(String.valueOf(Long.MAX_VALUE / 8 * 4)), e.getMessage());
        assertEquals(Long.MAX_VALUE / 8 * 4, e.requestedBytes());
        IllegalArgumentException z = assertThrows(IllegalArgumentException.class, () -> be.allocate(DeviceBuffer.Type.F32, 0));
        assertTrue(z.getMessage().startsWith("elements"), z.getMessage());
        assertEquals(0, be.memoryInUse());
    }

    @Test
    void uploadDownloadFillAndCopy() {
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 6); DeviceBuffer g = be.allocate(DeviceBuffer.Type.F32, 6);
             DeviceBuffer n = be.allocate(DeviceBuffer.Type.I32, 4)) {
            be.fill(f, 0, 6, -1.5);
            be.upload(new float[] {9, 1, 2, 3}, 1, f, 2, 3);
            float[] out = new float[6];
            be.download(f, 0, out, 0, 6);
            assertArrayEquals(new float[] {-1.5f, -1.5f, 1, 2, 3, -1.5f}, out);
            be.fill(g, 0, 6, 0);
            be.copy(f, 2, g, 1, 3);
            be.download(g, 0, out, 0, 6);
            assertArrayEquals(new float[] {0, 1, 2, 3, 0, 0}, out);
            be.fill(n, 1, 2, 7.9);
            be.upload(new int[] {-4}, 0, n, 0, 1);
            int[] iv = new int[3];
            be.download(n, 0, iv, 0, 3);
            assertArrayEquals(new int[] {-4, 7, 7}, iv);
            assertMessage(() -> be.copy(f, 0, f, 2, 3), "overlapping");
            assertMessage(() -> be.upload(new float[2], 0, f, 5, 2), "dst: elements [5, 7) outside a buffer of 6");
            assertMessage(() -> be.download(f, 0, new float[2], 1, 2), "dst: elements [1, 3) outside an array of 2");
            assertMessage(() -> be.upload((int[]) null, 0, n, 0, 1), "src: must not be null");
            assertMessage(() -> be.uploadDoubles(new double[2], 1, f, 0, 2), "src: elements [1, 3) outside an array of 2");
            assertMessage(() -> be.downloadDoubles(f, 0, null, 0, 2), "dst: must not be null");
            assertMessage(() -> be.upload(new float[2], 0, n, 0, 2), "dst: expected a F32 buffer, got I32");
            try (CpuBackend other = CpuBackend.open(1); DeviceBuffer x = other.allocate(DeviceBuffer.Type.F32, 6)) {
                assertMessage(() -> be.copy(x, 0, f, 0, 1), "src: a buffer of another backend");
            }
        }
    }

    @Test
    void gemmAndStridedBatchedThroughBuffers() {
        // Two 2x2 products sharing B (stride 0): C_q = A_q * B.
        try (DeviceBuffer a = be.allocate(DeviceBuffer.Type.F32, 8); DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 4);
             DeviceBuffer c = be.allocate(DeviceBuffer.Type.F32, 8)) {
            be.upload(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 0, a, 0, 8);
            be.upload(new float[] {1, 1, 0, 2}, 0, b, 0, 4);
            be.fill(c, 0, 8, Double.NaN);
            be.gemmStridedBatched(false, false, 2, 2, 2, 1f, a, 0, 2, 4, b, 0, 2, 0, 0f, c, 0, 2, 4, 2);
            float[] out = new float[8];
            be.download(c, 0, out, 0, 8);
            assertArrayEquals(new float[] {1, 5, 3, 11, 5, 17, 7, 23}, out);
            be.gemm(true, false, 2, 2, 2, 2f, a, 0, 2, b, 0, 2, 1f, c, 0, 2);
            be.download(c, 0, out, 0, 4);
            // Aᵀ*B = [[1,7],[2,10]] for A = [[1,2],[3,4]]; C = 2*that + C.
            assertArrayEquals(new float[] {3, 19, 7, 31}, java.util.Arrays.copyOf(out, 4));
            assertMessage(() -> be.gemm(false, false, 2, 2, 3, 1f, a, 0, 2, b, 0, 2, 0f, c, 0, 2), "lda: expected >= 3");
            assertMessage(() -> be.gemmStridedBatched(false, false, 2, 2, 2, 1f, a, 0, 2, 4, b, 0, 2, 0, 0f, c, 0, 2, 4, 3),
                    "a: a 2x2 matrix at offset 8");
        }
    }

    /**
     * The per-step products reuse a packed copy of B; every way of writing B (upload, fill, copy, being a GEMM's
     * C, being a kernel argument) must retire the copy. Each round checks the product against the values B
     * holds at that moment, three calls per state so that the packed copy is made and used.
     */
    @Test
    void packedWeightCopiesFollowEveryWriteToB() {
        packedCopiesFollowWrites(true);
    }

    /** The same for B stored untransposed ({@code [k, n]}, as the schedule passes W_ih^T), packed too. */
    @Test
    void packedUntransposedWeightCopiesFollowEveryWriteToB() {
        packedCopiesFollowWrites(false);
    }

    private void packedCopiesFollowWrites(boolean transB) {
        // Above SMALL_M rows: the backend caches packed copies only for products it would otherwise pack anyway.
        int m = CpuGemm.SMALL_M + 5, n = 20, k = 9;
        try (DeviceBuffer a = be.allocate(DeviceBuffer.Type.F32, m * k); DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n * k);
             DeviceBuffer c = be.allocate(DeviceBuffer.Type.F32, m * n); DeviceBuffer tmp = be.allocate(DeviceBuffer.Type.F32, n * k)) {
            float[] av = new float[m * k], bv = new float[n * k];
            for (int i = 0; i < av.length; i++) av[i] = (i % 7) - 3;
            be.upload(av, 0, a, 0, av.length);
            java.util.function.IntConsumer round = r -> {
                be.download(b, 0, bv, 0, bv.length);
                for (int call = 0; call < 3; call++) {
                    be.gemm(false, transB, m, n, k, 1f, a, 0, k, b, 0, transB ? k : n, 0f, c, 0, n);
                    float[] out = new float[m * n];
                    be.download(c, 0, out, 0, out.length);
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            float want = 0;
                            for (int p = 0; p < k; p++) want += av[i * k + p] * (transB ? bv[j * k + p] : bv[p * n + j]);
                            assertEquals(want, out[i * n + j], 1e-4,
                                    "transB " + transB + " round " + r + " call " + call + ": C[" + i + "][" + j + "]");
                        }
                    }
                }
            };
            for (int i = 0; i < bv.length; i++) bv[i] = i % 5;
            be.upload(bv, 0, b, 0, bv.length);
            round.accept(0);
            be.upload(new float[] {100}, 0, b, 7, 1);
            round.accept(1);
            be.fill(b, 3, 20, 2.5);
            round.accept(2);
            be.fill(tmp, 0, n * k, -1);
            be.copy(tmp, 0, b, 40, 10);
            round.accept(3);
            // b as a GEMM output: b[0:9] = a[0:1] * ones... (a 1 x 9 row of C overwriting B's first row).
            be.gemm(false, false, 1, k, 1, 1f, a, 0, 1, tmp, 0, k, 0f, b, 0, k);
            round.accept(4);
            be.launch(Kernels.COL_SUM, new long[] {k}, 2, k, a, b, 1f);
            round.accept(5);
        }
    }

    @Test
    void launchesAreCheckedByNameCountAndKind() {
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 4); DeviceBuffer n = be.allocate(DeviceBuffer.Type.I32, 4)) {
            assertMessage(() -> be.launch("no_such_kernel", new long[] {1}), "no_such_kernel");
            assertMessage(() -> be.launch(Kernels.COL_SUM, new long[] {1}, 1, 1), "col_sum: expected 5 arguments, got 2");
            assertMessage(() -> be.launch(Kernels.COL_SUM, new long[] {1}, 1, 1, f, f, 0.0),
                    "argument 4 (beta) must be a Float, got Double 0.0");
            assertMessage(() -> be.launch(Kernels.COL_SUM, new long[] {1}, 1, 1, n, f, 0f),
                    "argument 2 (src): expected a F32 buffer, got I32");
            assertMessage(() -> be.launch(Kernels.COL_SUM, new long[] {0}, 1, 1, f, f, 0f), "globalSize[0] must be >= 1");
        }
        for (String k : Kernels.ALL) assertTrue(CpuKernels.SPECS.containsKey(k), "kernel " + k + " implemented");
        for (String k : dev.recur.backend.AttentionKernels.ALL) {
            assertTrue(CpuKernels.SPECS.containsKey(k), "attention kernel " + k + " implemented");
        }
        for (String k : Kernels.SINGLE_GROUP) assertTrue(CpuKernels.SPECS.containsKey(k), "sequence kernel " + k + " implemented");
        for (String k : Kernels.SEQUENCE_BWD) assertTrue(CpuKernels.SPECS.containsKey(k), "sequence kernel " + k + " implemented");
        for (String k : dev.recur.backend.TrainKernels.ALL) {
            assertTrue(CpuKernels.SPECS.containsKey(k), "training kernel " + k + " implemented");
        }
        assertEquals(Kernels.ALL.size() + Kernels.SINGLE_GROUP.size() + Kernels.SEQUENCE_BWD.size()
                + dev.recur.backend.AttentionKernels.ALL.size() + dev.recur.backend.TrainKernels.ALL.size(),
                CpuKernels.SPECS.size(),
                "no kernel outside the catalogues");
    }

    @Test
    void aGridSmallerThanTheExtentsCoversOnlyItsWorkItems() {
        // col_sum over a 3x4 matrix with a grid of 2: columns 2 and 3 keep their values.
        try (DeviceBuffer src = be.allocate(DeviceBuffer.Type.F32, 12); DeviceBuffer dst = be.allocate(DeviceBuffer.Type.F32, 4)) {
            be.upload(new float[] {1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 300, 400}, 0, src, 0, 12);
            be.upload(new float[] {1, 1, -7, -8}, 0, dst, 0, 4);
            be.launch(Kernels.COL_SUM, new long[] {2}, 3, 4, src, dst, 0.5f);
            float[] out = new float[4];
            be.download(dst, 0, out, 0, 4);
            assertArrayEquals(new float[] {111.5f, 222.5f, -7, -8}, out);
        }
    }

    @Test
    void vectorAndScalarDropoutMasksAreDropoutMaskBitForBit() {
        long seed = 0x1234_5678_9abc_def0L;
        int lo = (int) seed, hi = (int) (seed >>> 32);
        int stream = DropoutMask.stream(2, 1, DropoutMask.RECURRENT);
        int thresh = DropoutMask.threshold(0.37);
        float scale = (float) (1 / (1 - 0.37));
        int prefix = CpuRows.maskPrefix(lo, hi, stream);
        int lanes = CpuMath.S.length();
        float[] v = new float[lanes];
        for (int base = 0; base < 4096; base += lanes) {
            CpuRows.maskVec(prefix, base, thresh, scale).intoArray(v, 0);
            for (int i = 0; i < lanes; i++) {
                float want = (float) DropoutMask.value(seed, stream, base + i, 0.37) == 0f ? 0f : scale;
                assertEquals(want, v[i], "vector mask at index " + (base + i));
                assertEquals(want, CpuRows.mask(prefix, base + i, thresh, scale), "scalar mask at index " + (base + i));
            }
        }
        assertEquals(1f, CpuRows.mask(prefix, 5, 0, scale), "no dropout: mask 1");
    }

    private static void assertMessage(Executable call, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message '" + e.getMessage() + "' should contain '" + expected + "'");
    }
}
