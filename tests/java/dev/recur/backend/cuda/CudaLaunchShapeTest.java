package dev.recur.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How CudaBackend turns a contract grid of work items into CUDA blocks and a grid of blocks. */
class CudaLaunchShapeTest {
    @Test
    void typicalStepGrids() {
        assertArrayEquals(new int[] {128, 2, 1}, CudaBackend.blockShape(100, 32, 2), "grid {H=100, B=32, D=2}");
        assertArrayEquals(new int[] {256, 1, 1}, CudaBackend.blockShape(512, 64, 2), "grid {H=512, B=64, D=2}");
        assertArrayEquals(new int[] {32, 1, 1}, CudaBackend.blockShape(1, 1, 1), "grid {1}");
        assertArrayEquals(new int[] {32, 8, 1}, CudaBackend.blockShape(20, 8, 1), "grid {20, 8}");
        assertArrayEquals(new int[] {256, 1, 1}, CudaBackend.blockShape(1_000_000, 1, 1), "col_sum over a wide matrix");
    }

    @Test
    void blocksGrowWhenZWouldExceedTheGridLimit() {
        // gather_hprev {P, B, T*D} with T*D = 100000: z needs blocks of 2.
        assertArrayEquals(new int[] {64, 4, 2}, CudaBackend.blockShape(64, 4, 100_000), "grid {64, 4, 100000}");
    }

    /** Every grid the contract allows within CUDA's limits gets a legal launch covering all work items. */
    @Test
    void randomGridsAreCoveredWithinCudaLimits() {
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 10_000; i++) {
            long gx = 1 + r.nextLong(1L << r.nextInt(1, 24));
            long gy = 1 + r.nextLong(1L << r.nextInt(1, 17));
            long gz = 1 + r.nextLong(1L << r.nextInt(1, 17));
            int[] b = CudaBackend.blockShape(gx, gy, gz);
            String where = "grid {" + gx + ", " + gy + ", " + gz + "} -> block {" + b[0] + ", " + b[1] + ", " + b[2] + "}";
            assertTrue(b[0] >= 1 && b[1] >= 1 && b[2] >= 1 && b[2] <= 64, where);
            assertTrue((long) b[0] * b[1] * b[2] <= 1024, "at most 1024 threads per block: " + where);
            assertTrue(b[0] >= 32 || b[0] >= gx, "x is at least a warp or the whole extent: " + where);
            assertTrue(CudaBackend.ceilDiv(gy, b[1]) <= 65535, "grid y within 65535: " + where);
            assertTrue(CudaBackend.ceilDiv(gz, b[2]) <= 65535, "grid z within 65535: " + where);
            assertTrue(CudaBackend.ceilDiv(gx, b[0]) * b[0] >= gx, "x covered: " + where);
        }
    }
}
