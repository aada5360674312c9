package dev.recur.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The {@code transpose} kernel ({@code kernels/common/transpose.h}) in Java: a matrix transpose (inner 1) in 32x32
 * tiles, so both sides are walked a cache line at a time; a swap of the first two dimensions (inner F) as one
 * block copy per row; a copy or accumulation between offsets (rows = cols = 1) with vectors. Large launches are
 * split over the pool by rows (or, for the flat case, by ranges of the inner dimension), so no two tasks write
 * the same element. The grid is {@code {inner*cols, rows}} as on a device.
 */
final class CpuTranspose {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int TILE = 32;
    /** Elements from which a launch is split over the pool (below, handing it over costs more than it saves). */
    private static final long PARALLEL_MIN = 1 << 16;

    private CpuTranspose() {}

    static void run(CpuPool pool, long[] grid, int rows, int cols, int inner, MemorySegment src, int srcOff, int srcLd,
                    MemorySegment dst, int dstOff, int dstLd, float beta) {
        // Work items outside the grid do nothing, as on a device: item (i, r) is column i / inner, element i % inner.
        long ni = Math.min(grid[0], (long) inner * cols);
        int nr = (int) Math.min(grid[1], rows);
        if (ni <= 0 || nr <= 0) return;
        int fullCols = (int) (ni / inner), rest = (int) (ni % inner);
        int nc = fullCols + (rest > 0 ? 1 : 0);
        long total = ni * nr;
        boolean parallel = pool.threads() > 1 && total >= PARALLEL_MIN && pool.shareable(src) && pool.shareable(dst);
        if (nr == 1 && nc == 1) {
            int ne = fullCols == 1 ? inner : rest;
            int parts = parallel ? 4 * pool.threads() : 1;
            int per = ((ne + parts - 1) / parts + L - 1) / L * L;
            CpuPool.Task t = (p, th) -> {
                int e0 = p * per, e1 = Math.min(ne, e0 + per);
                if (e0 < e1) flat(src, (long) srcOff + e0, dst, (long) dstOff + e0, e1 - e0, beta);
            };
            if (parts > 1) pool.run(parts, t);
            else t.run(0, 0);
            return;
        }
        int tiles = (nr + TILE - 1) / TILE;
        CpuPool.Task t = (p, th) -> {
            int r0 = p * TILE, r1 = Math.min(nr, r0 + TILE);
            for (int c0 = 0; c0 < nc; c0 += TILE) {
                int c1 = Math.min(nc, c0 + TILE);
                for (int c = c0; c < c1; c++) {
                    int ne = c < fullCols ? inner : rest;
                    for (int r = r0; r < r1; r++) {
                        long s = srcOff + ((long) r * srcLd + c) * inner, d = dstOff + ((long) c * dstLd + r) * inner;
                        if (ne == 1) {
                            float v = src.getAtIndex(F, s);
                            dst.setAtIndex(F, d, beta == 0f ? v : beta * dst.getAtIndex(F, d) + v);
                        } else {
                            flat(src, s, dst, d, ne, beta);
                        }
                    }
                }
            }
        };
        if (parallel && tiles > 1) pool.run(tiles, t);
        else for (int p = 0; p < tiles; p++) t.run(p, 0);
    }

    /** {@code dst[d..d+n) = beta*dst + src[s..s+n)}; beta 0 does not read dst. */
    private static void flat(MemorySegment src, long s, MemorySegment dst, long d, int n, float beta) {
        if (beta == 0f) {
            MemorySegment.copy(src, s * 4, dst, d * 4, (long) n * 4);
            return;
        }
        int nv = n - n % L;
        ByteOrder o = ByteOrder.nativeOrder();
        for (int i = 0; i < nv; i += L) {
            FloatVector x = FloatVector.fromMemorySegment(S, src, (s + i) * 4, o);
            FloatVector y = FloatVector.fromMemorySegment(S, dst, (d + i) * 4, o);
            y.mul(beta).add(x).intoMemorySegment(dst, (d + i) * 4, o);
        }
        for (int i = nv; i < n; i++) dst.setAtIndex(F, d + i, beta * dst.getAtIndex(F, d + i) + src.getAtIndex(F, s + i));
    }
}
