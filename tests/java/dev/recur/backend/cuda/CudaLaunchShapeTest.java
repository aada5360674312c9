package dev.recur.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How CudaBackend turns a contract grid of work items into CUDA blocks and a grid of blocks. */
class CudaLaunchShapeTest {
    @Test
    void typicalStepGrids() {
        assertArrayEquals(new int[] {128, 2, 1}, CudaBackend.blockShape(100, 32, 2, 1024), "grid {H=100, B=32, D=2}");
        assertArrayEquals(new int[] {256, 1, 1}, CudaBackend.blockShape(512, 64, 2, 1024), "grid {H=512, B=64, D=2}");
        assertArrayEquals(new int[] {32, 1, 1}, CudaBackend.blockShape(1, 1, 1, 1024), "grid {1}");
        assertArrayEquals(new int[] {32, 8, 1}, CudaBackend.blockShape(20, 8, 1, 1024), "grid {20, 8}");
        assertArrayEquals(new int[] {256, 1, 1}, CudaBackend.blockShape(1_000_000, 1, 1, 1024), "col_sum over a wide matrix");
    }

    @Test
    void blocksGrowWhenZWouldExceedTheGridLimit() {
        // gather_hprev {P, B, T*D} with T*D = 100000: z needs blocks of 2.
        assertArrayEquals(new int[] {64, 4, 2}, CudaBackend.blockShape(64, 4, 100_000, 1024), "grid {64, 4, 100000}");
    }

    @Test
    void aKernelsThreadLimitCapsTheBlock() {
        // A 128-register kernel (gemm_wide_nn on sm_90) allows 512 threads; an odd limit rounds down to a power of two.
        assertArrayEquals(new int[] {256, 1, 2}, CudaBackend.blockShape(300, 1, 100_000, 512), "limit 512");
        assertArrayEquals(new int[] {128, 1, 1}, CudaBackend.blockShape(300, 1, 1, 200), "limit 200");
        assertArrayEquals(new int[] {32, 2, 1}, CudaBackend.blockShape(20, 8, 1, 64), "limit 64");
    }

    /** Every grid that can fit CUDA's limits with the kernel's thread limit gets a legal launch covering all work items. */
    @Test
    void randomGridsAreCoveredWithinCudaLimits() {
        SplittableRandom r = new SplittableRandom(7);
        int fitted = 0;
        for (int i = 0; i < 20_000; i++) {
            long gx = 1 + r.nextLong(1L << r.nextInt(1, 24));
            long gy = 1 + r.nextLong(1L << r.nextInt(1, 20));
            long gz = 1 + r.nextLong(1L << r.nextInt(1, 20));
            int limit = r.nextBoolean() ? 1024 : r.nextInt(32, 1025);
            int[] b = CudaBackend.blockShape(gx, gy, gz, limit);
            String where = "grid {" + gx + ", " + gy + ", " + gz + "}, limit " + limit + " -> block {" + b[0] + ", " + b[1] + ", " + b[2] + "}";
            assertTrue(b[0] >= 1 && b[1] >= 1 && b[2] >= 1 && b[2] <= 64, where);
            assertTrue((long) b[0] * b[1] * b[2] <= limit, "at most the kernel's threads per block: " + where);
            long needZ = CudaBackend.ceilPow2(CudaBackend.ceilDiv(gz, 65535));
            long needY = CudaBackend.ceilPow2(CudaBackend.ceilDiv(gy, 65535));
            if (needZ <= 64 && needZ * needY <= Integer.highestOneBit(limit)) {
                fitted++;
                assertTrue(CudaBackend.ceilDiv(gy, b[1]) <= 65535, "grid y within 65535: " + where);
                assertTrue(CudaBackend.ceilDiv(gz, b[2]) <= 65535, "grid z within 65535: " + where);
                if (needZ == 1 && needY == 1) {
                    assertTrue(b[0] >= Math.min(32, Integer.highestOneBit(limit)) || b[0] >= gx, "x is at least a warp or the whole extent: " + where);
                }
            }
        }
        assertTrue(fitted > 15_000, "most random grids fit: " + fitted);
    }
}
