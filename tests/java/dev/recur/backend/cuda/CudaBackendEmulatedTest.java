package dev.recur.backend.cuda;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Leaks;
import dev.recur.backend.Kernels;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CudaBackend}'s own logic on {@link EmulatedCuda} (device memory in host arrays), where this machine has no
 * GPU: copies through the page-locked staging halves in chunks, every call on the backend's own stream, memory
 * accounting and the {@link Leaks} safety net, the launch shapes (single-group kernels as one block) and argument
 * marshalling, the cuBLAS call with B first, and a sticky fault closing the backend with its reason.
 */
class CudaBackendEmulatedTest {
    private static final long CAPACITY = 256L << 20;
    private EmulatedCuda api;
    private CudaBackend be;

    @BeforeEach
    void open(@TempDir Path cache) {
        api = new EmulatedCuda(CAPACITY, 1024);
        CudaProbe.Result probe = new CudaProbe.Result(true, "emulated", api, List.of(api.device(0)), 13000, "");
        be = new CudaBackend("cuda", probe, 0, new KernelCache(cache));
    }

    @AfterEach
    void close() {
        be.close();
        assertEquals(0, api.primaryRetained, "primary context retains after close");
        // After a fault the page-locked memory goes with the context (freeing it would only return the fault).
        if (api.stickyFault == null) assertEquals(0, api.pinnedLive, "page-locked staging buffers after close");
    }

    @Test
    void trafficCountsTheBytesEachWayAndTheWaits() {
        dev.recur.backend.Traffic start = be.traffic();
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, 1000); DeviceBuffer g = be.allocate(DeviceBuffer.Type.F32, 1000)) {
            be.upload(new float[1000], 0, f, 0, 1000);
            be.copy(f, 0, g, 0, 1000);
            be.fill(g, 0, 10, 1.0);
            dev.recur.backend.Traffic up = be.traffic().minus(start);
            assertEquals(new dev.recur.backend.Traffic(4000, 0, 0), up, "one upload; copies and fills are not traffic");
            be.download(g, 0, new float[1000], 0, 1000);
            be.finish();
            assertEquals(new dev.recur.backend.Traffic(4000, 4000, 2), be.traffic().minus(start),
                    "a blocking download and a finish");
        }
    }

    @Test
    void aWrappedPointerIsUsedInPlaceAndNeverFreed() {
        long address = api.memAlloc(64);
        long inUse = be.memoryInUse();
        int freed = api.freedCount();
        DeviceBuffer w = be.wrap(address, 16, DeviceBuffer.Type.F32);
        assertEquals(inUse, be.memoryInUse(), "the caller's memory is not counted");
        float[] v = new float[16];
        for (int i = 0; i < 16; i++) v[i] = i + 0.5f;
        be.upload(v, 0, w, 0, 16);
        float[] back = new float[16];
        be.download(w, 0, back, 0, 16);
        assertArrayEquals(v, back);
        w.close();
        assertTrue(w.isClosed());
        assertEquals(freed, api.freedCount(), "closing a wrapped buffer frees nothing");
        api.memFree(address);
        assertThrows(IllegalArgumentException.class, () -> be.wrap(0, 16, DeviceBuffer.Type.F32));
        assertThrows(IllegalArgumentException.class, () -> be.wrap(address + 2, 16, DeviceBuffer.Type.F32));
    }

    @Test
    void copiesLargerThanTheStagingBuffersRoundTrip() {
        int n = CudaBackend.STAGING_BYTES / 4 * 2 + 12_345; // three chunks, the last partial
        float[] src = new float[n + 7];
        for (int i = 0; i < src.length; i++) src[i] = i * 0.25f - 1000f;
        int[] ints = new int[n];
        for (int i = 0; i < n; i++) ints[i] = i * 31 - 7;
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, n + 3); DeviceBuffer g = be.allocate(DeviceBuffer.Type.F32, n + 3);
             DeviceBuffer k = be.allocate(DeviceBuffer.Type.I32, n)) {
            be.fill(f, 0, n + 3, -2.5);
            be.upload(src, 7, f, 3, n);
            be.copy(f, 0, g, 0, n + 3);
            float[] back = new float[n + 3];
            be.download(g, 0, back, 0, n + 3);
            for (int i = 0; i < n + 3; i++) {
                float want = i < 3 ? -2.5f : src[7 + i - 3];
                if (back[i] != want) throw new AssertionError("g[" + i + "]: expected " + want + ", got " + back[i]);
            }
            be.upload(ints, 0, k, 0, n);
            be.fill(k, n - 2, 2, -9);
            int[] kb = new int[n];
            be.download(k, 0, kb, 0, n);
            int[] want = ints.clone();
            want[n - 2] = want[n - 1] = -9;
            assertArrayEquals(want, kb, "I32 round trip");
            double[] wide = new double[n + 5];
            for (int i = 0; i < wide.length; i++) wide[i] = i * 1e-3 + 0.1;
            be.uploadDoubles(wide, 5, g, 1, n);
            double[] wideBack = new double[n + 3];
            be.downloadDoubles(g, 0, wideBack, 2, n + 1);
            for (int i = 0; i < n; i++) {
                if (wideBack[3 + i] != (float) wide[5 + i]) throw new AssertionError("doubles[" + i + "]: " + wideBack[3 + i]);
            }
            assertEquals(-2.5, wideBack[2], "the element before the float64 upload");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.copy(f, 0, f, 10, 20));
            assertTrue(e.getMessage().contains("overlap"), e.getMessage());
        }
        assertTrue(api.copyStreams.size() >= 10, "copies issued: " + api.copyStreams.size());
        for (CudaApi.Stream s : api.copyStreams) assertSame(api.created, s, "every copy on the backend's own stream");
        assertSame(api.created, api.blasStream, "cuBLAS on the backend's stream");
    }

    /** Small uploads share a staging half: the host waits for the device once per half used, not once per upload. */
    @Test
    void smallUploadsShareAStagingHalf() {
        int uploads = 2000, n = 1000; // 4 kB each: 8 MB in all, two halves' worth twice over
        try (DeviceBuffer f = be.allocate(DeviceBuffer.Type.F32, (long) uploads * n)) {
            int waits = api.eventWaits;
            float[] src = new float[n];
            for (int u = 0; u < uploads; u++) {
                for (int i = 0; i < n; i++) src[i] = u * 10_000f + i;
                be.upload(src, 0, f, (long) u * n, n); // src is overwritten next round: each upload took its own copy
            }
            int used = api.eventWaits - waits;
            assertTrue(used <= 5, "event waits for " + uploads + " uploads of " + 4 * n + " bytes: " + used);
            float[] back = new float[uploads * n];
            be.download(f, 0, back, 0, back.length);
            for (int u = 0; u < uploads; u++) {
                for (int i = 0; i < n; i++) {
                    if (back[u * n + i] != u * 10_000f + i) throw new AssertionError("upload " + u + " element " + i + ": " + back[u * n + i]);
                }
            }
        }
    }

    @Test
    void memoryIsAccountedAndForgottenBuffersAreFreedByTheCleaner() throws Exception {
        long start = be.memoryInUse();
        List<DeviceBuffer> kept = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 1 + i % 97);
            if (i % 100 == 0) kept.add(b);
            else b.close();
        }
        long keptBytes = kept.stream().mapToLong(b -> 4 * b.size()).sum();
        assertEquals(start + keptBytes, be.memoryInUse(), "bytes in use with 10 buffers kept");
        assertEquals(keptBytes, api.allocated, "bytes the driver holds");
        kept.forEach(DeviceBuffer::close);
        assertEquals(start, be.memoryInUse(), "after closing every buffer");

        long collected = Leaks.collectedCount();
        int freed = api.freedCount();
        forget();
        // Wait for this buffer's own free: the leak count is global, and another test's forgotten buffer may be
        // collected first.
        for (int i = 0; i < 200 && api.freedCount() == freed; i++) {
            System.gc();
            Thread.sleep(10);
        }
        assertTrue(Leaks.collectedCount() > collected, "the cleaner freed the forgotten buffer");
        assertEquals(freed + 1, api.freedCount(), "cuMemFree calls");
        assertEquals(start, be.memoryInUse(), "after the cleaner ran");

        DeviceBackend.OutOfDeviceMemoryException oom = assertThrows(DeviceBackend.OutOfDeviceMemoryException.class,
                () -> be.allocate(DeviceBuffer.Type.F32, CAPACITY));
        assertEquals(4 * CAPACITY, oom.requestedBytes(), "requested");
        assertEquals(CAPACITY - api.allocated, oom.availableBytes(), "available, from cuMemGetInfo");
        assertTrue(oom.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY"), oom.getMessage());
    }

    private void forget() {
        be.allocate(DeviceBuffer.Type.F32, 1234);
    }

    @Test
    void launchesPassAddressesAndNumbersInOrderOverRoundedBlocks() {
        try (DeviceBuffer s = be.allocate(DeviceBuffer.Type.F32, 37 * 300); DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, 300)) {
            be.launch(Kernels.COL_SUM, new long[] {300}, 37, 300, s, d, 0.5f);
            EmulatedCuda.Launch l = api.launches.getLast();
            assertEquals(Kernels.COL_SUM, l.kernel(), "kernel");
            assertArrayEquals(new int[] {256, 1, 1}, l.block(), "block");
            assertArrayEquals(new int[] {2, 1, 1}, l.grid(), "grid: 300 work items in blocks of 256");
            assertEquals(List.of(37, 300, ((CudaBuffer) s).at(0), ((CudaBuffer) d).at(0), 0.5f), Arrays.asList(l.args()), "arguments");
            assertSame(api.created, l.stream(), "launch stream");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> be.launch(Kernels.COL_SUM, new long[] {300}, 37, 300, s, d, 0));
            assertTrue(e.getMessage().contains("argument 4") && e.getMessage().contains("a Float"), e.getMessage());
        }
    }

    @Test
    void singleGroupKernelsRunAsOneBlockOfTheWholeGrid() throws Exception {
        assertTrue(be.supports(Kernels.LSTM_SEQ_FWD) && be.supports(Kernels.GRU_SEQ_FWD) && be.supports(Kernels.RNN_SEQ_FWD),
                "the persistent kernels are supported");
        assertFalse(be.supports(Kernels.LSTM_STEP_FWD8) || be.supports(Kernels.LSTM_SEQ_BWD), "no 8-unit or sequence-backward kernels");
        Map<String, List<PtxEntries.Kind>> kinds = KernelSignatures.ofFolder(Path.of("kernels/cuda"), ".cu");
        try (DeviceBuffer buf = be.allocate(DeviceBuffer.Type.F32, 64)) {
            for (String k : Kernels.SINGLE_GROUP) {
                Object[] args = kinds.get(k).stream().map(kind -> switch (kind) {
                    case POINTER -> (Object) buf;
                    case INT -> (Object) 1;
                    case FLOAT -> (Object) 0.5f;
                }).toArray();
                be.launch(k, new long[] {256}, args);
                EmulatedCuda.Launch l = api.launches.getLast();
                assertEquals(k, l.kernel(), "kernel");
                assertArrayEquals(new int[] {1, 1, 1}, l.grid(), k + ": one block");
                assertArrayEquals(new int[] {256, 1, 1}, l.block(), k + ": of the whole grid");
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.launch(k, new long[] {2048}, args));
                assertTrue(e.getMessage().contains("at most 1024 work items"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> be.launch(k, new long[] {16, 16}, args));
                assertTrue(e.getMessage().contains("1-D grid"), e.getMessage());
            }
        }
    }

    @Test
    void gemmCallsCublasWithBFirstAndStridesCarriedOver() {
        try (DeviceBuffer a = be.allocate(DeviceBuffer.Type.F32, 1000); DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, 1000);
             DeviceBuffer c = be.allocate(DeviceBuffer.Type.F32, 1000)) {
            be.gemmStridedBatched(true, false, 5, 7, 3, 1.5f, a, 2, 5, 20, b, 4, 7, 0, 0f, c, 1, 14, 7, 2);
            EmulatedCuda.Gemm g = api.gemms.getLast();
            assertEquals(new CublasGemm(false, true, 7, 5, 3, 7, 0, 5, 20, 14, 7, 2), g.call(), "the cuBLAS call");
            assertEquals(((CudaBuffer) b).at(4), g.first(), "first operand: B at offB");
            assertEquals(((CudaBuffer) a).at(2), g.second(), "second operand: A at offA");
            assertEquals(((CudaBuffer) c).at(1), g.c(), "C at offC");
            assertEquals(1.5f, g.alpha());
            be.gemm(false, false, 0, 7, 3, 1f, a, 0, 3, b, 0, 7, 0f, c, 0, 7);
            assertEquals(1, api.gemms.size(), "m == 0 issues nothing");
        }
    }

    @Test
    void aStickyFaultClosesTheBackendNamingTheLaunchesSinceTheLastSynchronisation() {
        DeviceBuffer s = be.allocate(DeviceBuffer.Type.F32, 600);
        DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, 300);
        be.finish();
        be.launch(Kernels.COL_SUM, new long[] {300}, 2, 300, s, d, 0f);
        api.stickyFault = 700;
        CudaBackend.CudaFaultException e = assertThrows(CudaBackend.CudaFaultException.class,
                () -> be.download(d, 0, new float[300], 0, 300));
        assertTrue(e.getMessage().startsWith("cuda backend (cuda) closed by a device fault: CUDA_ERROR_ILLEGAL_ADDRESS reported by "
                + "cuMemcpyDtoHAsync: a fault of col_sum"), e.getMessage());
        assertEquals(0, be.memoryInUse(), "the context's memory is gone with it");
        IllegalStateException later = assertThrows(IllegalStateException.class, () -> be.allocate(DeviceBuffer.Type.F32, 4));
        assertEquals(e.getMessage(), later.getMessage(), "later calls repeat the fault, not another error");
        assertThrows(IllegalStateException.class, be::finish, "finish after the fault");
        s.close();
        d.close();
        be.close();
        assertEquals(0, api.primaryRetained, "the primary context is released, so a new backend gets a fresh one");
    }

    @Test
    void aFaultAfterSeveralLaunchesNamesThemAll() {
        try (DeviceBuffer s = be.allocate(DeviceBuffer.Type.F32, 600); DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, 300)) {
            be.finish();
            be.launch(Kernels.COL_SUM, new long[] {300}, 2, 300, s, d, 0f);
            be.gemm(false, false, 2, 2, 2, 1f, s, 0, 2, s, 10, 2, 0f, d, 0, 2);
            api.stickyFault = 700;
            CudaBackend.CudaFaultException e = assertThrows(CudaBackend.CudaFaultException.class, be::finish);
            assertTrue(e.getMessage().endsWith("a fault of one of col_sum, cublasSgemm (issued since the last completed "
                    + "synchronisation; -Drecur.cuda.syncLaunches=true names the faulting launch exactly)"), e.getMessage());
        }
    }

    @Test
    void deviceTimeComesFromEvents() {
        assertEquals(0.25, be.deviceMillis(() -> be.fill(be.allocate(DeviceBuffer.Type.F32, 4), 0, 4, 1.0)), 1e-9, "event ms");
    }
}
