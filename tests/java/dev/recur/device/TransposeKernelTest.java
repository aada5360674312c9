package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.backend.reference.ReferenceLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code transpose} kernel alone on every device backend against its float64 reference
 * ({@link ReferenceLayout#transpose}): matrix transposes with row strides and offsets (the weight copies), the swap of
 * the first two dimensions (batch-first), flat copies and accumulations between offsets (gradient SET/ADD), and a grid
 * rounded up past the extents. Copies must be exact; an accumulation is one float32 addition per element.
 */
class TransposeKernelTest {
    record Case(String name, int rows, int cols, int inner, int srcLd, int srcOff, int dstLd, int dstOff, float beta,
                long[] grid) {
        @Override
        public String toString() {
            return name;
        }
    }

    static List<Object[]> rows() {
        List<Case> cases = List.of(
                new Case("matrix 37x53", 37, 53, 1, 53, 0, 37, 0, 0f, new long[] {53, 37}),
                new Case("matrix with lds and offsets", 20, 9, 1, 12, 5, 47, 7, 0f, new long[] {9, 20}),
                new Case("swap01 [5,7,6]", 5, 7, 6, 7, 0, 5, 0, 0f, new long[] {42, 5}),
                new Case("flat copy", 1, 1, 1000, 1, 3, 1, 11, 0f, new long[] {1000, 1}),
                new Case("flat add", 1, 1, 70001, 1, 0, 1, 2, 1f, new long[] {70001, 1}),
                new Case("matrix add, grid rounded up", 33, 65, 1, 65, 0, 33, 0, 1f, new long[] {80, 40}),
                new Case("large swap01 over the pool", 64, 50, 32, 50, 0, 64, 0, 0f, new long[] {1600, 64}));
        List<Object[]> out = new ArrayList<>();
        for (String be : List.of("cpu", "opencl")) for (Case c : cases) out.add(new Object[] {be, c});
        return out;
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("rows")
    void matchesTheReference(String backend, Case c) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom rnd = new SplittableRandom(c.name().hashCode());
        int srcN = c.srcOff() + ((c.rows() - 1) * c.srcLd() + c.cols()) * c.inner();
        int dstN = c.dstOff() + ((c.cols() - 1) * c.dstLd() + c.rows()) * c.inner();
        float[] src = new float[srcN], dst = new float[dstN];
        for (int i = 0; i < srcN; i++) src[i] = (float) rnd.nextDouble(-2, 2);
        // beta 0 must not read dst: NaN there must not reach the result.
        for (int i = 0; i < dstN; i++) dst[i] = c.beta() == 0f ? Float.NaN : (float) rnd.nextDouble(-2, 2);
        double[] ref = new double[dstN];
        for (int i = 0; i < dstN; i++) ref[i] = dst[i];
        double[] srcD = new double[srcN];
        for (int i = 0; i < srcN; i++) srcD[i] = src[i];
        ReferenceLayout.transpose(c.rows(), c.cols(), c.inner(), srcD, c.srcOff(), c.srcLd(), ref, c.dstOff(), c.dstLd(),
                c.beta());
        long before = be.memoryInUse();
        try (DeviceBuffer s = be.allocate(DeviceBuffer.Type.F32, srcN); DeviceBuffer d = be.allocate(DeviceBuffer.Type.F32, dstN)) {
            be.upload(src, 0, s, 0, srcN);
            be.upload(dst, 0, d, 0, dstN);
            be.launch(Kernels.TRANSPOSE, c.grid(), c.rows(), c.cols(), c.inner(), s, c.srcOff(), c.srcLd(), d, c.dstOff(),
                    c.dstLd(), c.beta());
            float[] got = new float[dstN];
            be.download(d, 0, got, 0, dstN);
            for (int i = 0; i < dstN; i++) {
                // Elements the kernel does not cover keep their value (NaN stays NaN); covered ones match exactly,
                // as float32 arithmetic of the same one addition.
                double want = c.beta() == 0f ? ref[i] : (float) ref[i];
                if (Double.isNaN(want)) {
                    assertTrue(Float.isNaN(got[i]), c + ": dst[" + i + "] expected untouched NaN, got " + got[i]);
                } else {
                    assertEquals((float) want, got[i], c + ": dst[" + i + "]");
                }
            }
        }
        assertEquals(before, be.memoryInUse(), "memory returned");
    }
}
