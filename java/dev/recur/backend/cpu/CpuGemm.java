package dev.recur.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Single-precision GEMM on row-major matrices held in {@link MemorySegment}s:
 * {@code C = alpha * op(A) * op(B) + beta * C}, {@code op(X) = X} or {@code Xᵀ}, written with the Vector API.
 *
 * <p>Large products take the classic packed route (Goto / BLIS): {@code op(B)} is packed into panels of
 * {@link #NR} columns per {@code KC}-deep slice, {@code op(A)} into panels of {@link #MR} rows per
 * {@code MC}-row block, and a register-blocked {@code MR x NR} FMA micro-kernel runs over the panels
 * (6 rows x 2 vectors = 12 accumulators, which leaves the other 4 of AVX2's 16 vector registers for the two
 * B vectors and the A broadcast). Row blocks are spread over a persistent {@link CpuPool}.
 *
 * <p>Small-M products with an untransposed A — the per-step recurrent GEMMs of an RNN, e.g.
 * {@code [32 x 256] * [256 x 1024]} — would spend as long packing the weight matrix as multiplying, so they
 * read the operands in place: {@code A * Bᵀ} as register-blocked dot products along K, {@code A * B} as
 * broadcast FMAs over B's rows, split over the pool by columns.
 *
 * <p>Beta zero means C is not read (it may hold NaN). Instances are thread-safe (calls are serialised);
 * close to stop the pool's threads.
 */
public final class CpuGemm implements AutoCloseable {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** Rows of the micro-kernel tile. */
    public static final int MR = 6;
    /** Columns of the micro-kernel tile: two vectors. */
    public static final int NR = 2 * L;
    /**
     * Depth of a packed slice. An NR-wide B micro-panel of this depth is 32 KiB (L1-sized on this AVX2 machine);
     * a deeper slice means fewer read-modify-write passes over C: 512 against 256 measured 44-46 vs 57 ms (min)
     * for a [3200 x 512] x [512 x 2048] product on two threads.
     */
    static final int KC = 512;
    /** Rows of a packed A block (MC x KC floats = 240 KiB, resident in L2). */
    static final int MC = 120;
    /** Columns of packed B per slice (KC x NC floats = 4 MiB, resident in L3). */
    static final int NC = 4096;
    /** At or below this many rows an untransposed A is read in place instead of packing B. */
    static final int SMALL_M = 64;
    /**
     * Below this many multiply-adds (about 50-100 µs on one thread) a product runs on the calling thread alone:
     * waking a worker, or waiting for one the OS has not scheduled, costs more than it saves (see
     * {@code CpuBackend.Thresholds}).
     */
    static final long PARALLEL_MIN_FMAS = 1L << 21;

    private final CpuPool pool;
    private final boolean ownsPool;
    private final long parallelMinFmas;
    private final long scratchPackFloats;
    private final float[][] aPack;
    private final float[][] edge;
    private final float[][] rowBufs;
    /**
     * One KC x NC slice of op(B) for the products too large to pack whole (see {@link #SCRATCH_PACK_FLOATS}); made on
     * first use (8 MiB), not with every GEMM.
     */
    private MemorySegment bPack;

    /** A GEMM with its own pool of {@code threads} threads (the caller included). */
    public CpuGemm(int threads) {
        this(new CpuPool(threads), true, PARALLEL_MIN_FMAS);
    }

    /** A GEMM running on a pool owned by the caller (closing this GEMM leaves the pool running). */
    public CpuGemm(CpuPool pool) {
        this(pool, false, PARALLEL_MIN_FMAS);
    }

    /** Tests lower {@code parallelMinFmas} to drive small products through the multi-threaded paths. */
    CpuGemm(CpuPool pool, boolean ownsPool, long parallelMinFmas) {
        this(pool, ownsPool, parallelMinFmas, SCRATCH_PACK_FLOATS);
    }

    /** Tests also lower {@code scratchPackFloats} to send products through the slice-by-slice packed path. */
    CpuGemm(CpuPool pool, boolean ownsPool, long parallelMinFmas, long scratchPackFloats) {
        if (pool == null) throw new IllegalArgumentException("pool: must not be null");
        this.pool = pool;
        this.ownsPool = ownsPool;
        this.parallelMinFmas = parallelMinFmas;
        this.scratchPackFloats = scratchPackFloats;
        int t = pool.threads();
        aPack = new float[t][];
        edge = new float[t][];
        rowBufs = new float[t][];
        for (int i = 0; i < t; i++) edge[i] = new float[MR * NR];
    }

    private float[] rowBuf(int thread, int size) {
        float[] b = rowBufs[thread];
        if (b == null || b.length < size) b = rowBufs[thread] = new float[Math.max(size, MC + MR)];
        return b;
    }

    /** Threads a product may use. */
    public int threads() {
        return pool.threads();
    }

    /**
     * {@code C = alpha * op(A) * op(B) + beta * C}, all matrices row-major float32.
     *
     * @param transA use {@code Aᵀ}: A is stored {@code [k, m]}, else {@code [m, k]}
     * @param transB use {@code Bᵀ}: B is stored {@code [n, k]}, else {@code [k, n]}
     * @param m      rows of op(A) and C
     * @param n      columns of op(B) and C
     * @param k      the inner dimension
     * @param a      A's memory; {@code aOffset} its first element (in floats), {@code lda} its row stride (in floats)
     * @param b      B's memory, likewise
     * @param c      C's memory, likewise; must not overlap A or B
     */
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     MemorySegment a, long aOffset, int lda,
                     MemorySegment b, long bOffset, int ldb,
                     float beta, MemorySegment c, long cOffset, int ldc) {
        gemmStridedBatched(transA, transB, m, n, k, alpha, a, aOffset, lda, 0, b, bOffset, ldb, 0,
                beta, c, cOffset, ldc, 0, 1);
    }

    /**
     * {@code batch} independent products as {@link #gemm}, product {@code q} at offsets
     * {@code aOffset + q*strideA}, {@code bOffset + q*strideB}, {@code cOffset + q*strideC} (floats). A or B
     * may repeat (stride 0); the C matrices must not share elements (they may interleave, as the column blocks
     * of the two directions of an RNN layer do). Small products of all batches are spread over
     * the threads together, so the two directions of an RNN step share one hand-off to the pool.
     */
    public synchronized void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha,
                                                MemorySegment a, long aOffset, int lda, long strideA,
                                                MemorySegment b, long bOffset, int ldb, long strideB,
                                                float beta, MemorySegment c, long cOffset, int ldc, long strideC,
                                                int batch) {
        if (m < 0) throw new IllegalArgumentException("m: expected >= 0, got " + m);
        if (n < 0) throw new IllegalArgumentException("n: expected >= 0, got " + n);
        if (k < 0) throw new IllegalArgumentException("k: expected >= 0, got " + k);
        if (batch < 1) throw new IllegalArgumentException("batch: expected >= 1, got " + batch);
        if (strideA < 0) throw new IllegalArgumentException("strideA: expected >= 0, got " + strideA);
        if (strideB < 0) throw new IllegalArgumentException("strideB: expected >= 0, got " + strideB);
        if (strideC < 0) throw new IllegalArgumentException("strideC: expected >= 0, got " + strideC);
        long last = batch - 1L;
        if (m > 0 && n > 0 && k > 0) {
            checkOperand("a", a, aOffset, aOffset + last * strideA, lda, transA ? k : m, transA ? m : k);
            checkOperand("b", b, bOffset, bOffset + last * strideB, ldb, transB ? n : k, transB ? k : n);
        }
        checkOperand("c", c, cOffset, cOffset + last * strideC, ldc, m, n);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f) {
            for (int q = 0; q < batch; q++) scale(m, n, beta, c, cOffset + q * strideC, ldc);
            return;
        }
        boolean par = pool.threads() > 1 && (long) m * n * k * batch >= parallelMinFmas
                && pool.shareable(a) && pool.shareable(b) && pool.shareable(c);
        if (!transA && m <= SMALL_M) {
            direct(par, transB, m, n, k, alpha, a, aOffset, lda, strideA, b, bOffset, ldb, strideB,
                    beta, c, cOffset, ldc, strideC, batch);
            return;
        }
        if ((long) k * roundUp(n, NR) <= scratchPackFloats) {
            // All of op(B) packed in one hand-off, then every row block over every depth slice in a second one:
            // two pool round trips per product instead of two per depth slice, and no thread idles at a slice
            // boundary. Same slices, kernel and accumulation order as packed(), so the results are identical.
            for (int q = 0; q < batch; q++) {
                PackedB pb = packInto(transB, k, n, b, bOffset + q * strideB, ldb, par);
                gemmPrepacked(transA, m, alpha, a, aOffset + q * strideA, lda, 0, new PackedB[] {pb}, beta, c,
                        cOffset + q * strideC, ldc, 0);
            }
            return;
        }
        for (int q = 0; q < batch; q++) {
            packed(par, transA, transB, m, n, k, alpha, a, aOffset + q * strideA, lda, b, bOffset + q * strideB, ldb,
                    beta, c, cOffset + q * strideC, ldc);
        }
    }

    /**
     * Largest op(B) packed whole into the reusable scratch (floats; 32 MiB: the weight-gradient products of a
     * T=100, B=64 layer with 1024 inputs take [6400 x 1024]).
     */
    static final long SCRATCH_PACK_FLOATS = 8L << 20;
    private MemorySegment scratchPack = MemorySegment.NULL;

    /**
     * Packed panels live off-heap, 64-byte aligned, in memory the garbage collector frees: the micro-kernel's
     * vector loads from a heap float[] ran at half speed under some collectors (42 vs 90 GFLOP/s on one thread
     * with ParallelGC here, whatever the offset), from an aligned segment at full speed under all of them.
     */
    static MemorySegment alignedFloats(long floats) {
        return Arena.ofAuto().allocate(Math.max(1, floats) * Float.BYTES, 64);
    }

    /**
     * {@code op(B)} packed once into the micro-kernel's panel layout, for a matrix multiplied many times (an RNN's
     * recurrent weights, at every step): re-packing a 1024 x 256 weight matrix costs as much as the
     * {@code [32 x 256] x [256 x 1024]} product it feeds. Depth slices of {@code kcStep} rows follow each other;
     * inside a slice of {@code kc} rows, panel {@code p} (columns {@code p*NR ..}) starts at {@code p*kc*NR}.
     * Holds a copy: it does not see later changes to B.
     */
    public static final class PackedB {
        final int k, n, kcStep, panels;
        /** The panels: {@code k * panels * NR} floats, 64-byte aligned. */
        final MemorySegment data;

        private PackedB(int k, int n, int kcStep, int panels, MemorySegment data) {
            this.k = k;
            this.n = n;
            this.kcStep = kcStep;
            this.panels = panels;
            this.data = data;
        }

        /** Depth of op(B). */
        public int k() {
            return k;
        }

        /** Columns of op(B). */
        public int n() {
            return n;
        }

        /** Bytes held. */
        public long bytes() {
            return (long) k * panels * NR * Float.BYTES;
        }

        int sliceBase(int pc) {
            return pc * panels * NR;
        }
    }

    /** Packs {@code op(B)} ({@code k x n}, stored as for {@link #gemm}) for {@link #gemmPrepacked}. */
    public synchronized PackedB pack(boolean transB, int k, int n, MemorySegment b, long bOffset, int ldb) {
        if (k < 1) throw new IllegalArgumentException("k: expected >= 1, got " + k);
        if (n < 1) throw new IllegalArgumentException("n: expected >= 1, got " + n);
        checkOperand("b", b, bOffset, bOffset, ldb, transB ? n : k, transB ? k : n);
        long size = (long) k * ceilDiv(n, NR) * NR;
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("b: " + k + "x" + n + " is too large to pack (" + size + " floats)");
        }
        return packInto(transB, k, n, b, bOffset, ldb, null);
    }

    /**
     * Packs op(B) into {@code data} when given (a fresh array otherwise); {@code par} null decides by size. With
     * {@code Boolean} {@code par} the copy goes into this GEMM's reusable scratch (valid until the next call).
     */
    private PackedB packInto(boolean transB, int k, int n, MemorySegment b, long bOffset, int ldb, Boolean scratchPar) {
        int kBlocks = ceilDiv(k, KC);
        int kcStep = ceilDiv(k, kBlocks);
        int panels = ceilDiv(n, NR);
        int size = k * panels * NR;
        MemorySegment data;
        if (scratchPar != null) {
            if (scratchPack.byteSize() < (long) size * Float.BYTES) scratchPack = alignedFloats(size);
            data = scratchPack;
        } else {
            data = alignedFloats(size);
        }
        PackedB pb = new PackedB(k, n, kcStep, panels, data);
        boolean par = scratchPar != null ? scratchPar && pool.threads() > 1
                : pool.threads() > 1 && size >= parallelMinFmas / 16 && pool.shareable(b);
        int slices = ceilDiv(k, kcStep);
        int tasks = slices * panels;
        CpuPool.Task body = (t, th) -> {
            int slice = t / panels, p = t % panels;
            int pc = slice * kcStep, kc = Math.min(kcStep, k - pc);
            packBPanel(transB, b, bOffset, ldb, pc, kc, 0, n, p, data, pb.sliceBase(pc) + p * kc * NR);
        };
        if (par) pool.run(tasks, body);
        else for (int t = 0; t < tasks; t++) body.run(t, 0);
        return pb;
    }

    /**
     * {@code C_q = alpha * op(A_q) * B_q + beta * C_q} for q in [0, batch) with each {@code B_q} prepacked by
     * {@link #pack}; A and C as in {@link #gemmStridedBatched}. All products and depth slices go to the pool in
     * one hand-off: with B packed there is nothing to wait for between slices.
     */
    public synchronized void gemmPrepacked(boolean transA, int m, float alpha, MemorySegment a, long aOffset, int lda,
                                           long strideA, PackedB[] bs, float beta, MemorySegment c, long cOffset,
                                           int ldc, long strideC) {
        if (bs == null || bs.length == 0) throw new IllegalArgumentException("bs: expected at least one packed B");
        int batch = bs.length, n = bs[0].n, k = bs[0].k;
        for (int q = 1; q < batch; q++) {
            if (bs[q].n != n || bs[q].k != k) {
                throw new IllegalArgumentException("bs[" + q + "]: expected " + k + "x" + n + ", got " + bs[q].k + "x" + bs[q].n);
            }
        }
        if (m < 0) throw new IllegalArgumentException("m: expected >= 0, got " + m);
        if (strideA < 0) throw new IllegalArgumentException("strideA: expected >= 0, got " + strideA);
        if (strideC < 0) throw new IllegalArgumentException("strideC: expected >= 0, got " + strideC);
        long last = batch - 1L;
        if (m > 0) checkOperand("a", a, aOffset, aOffset + last * strideA, lda, transA ? k : m, transA ? m : k);
        checkOperand("c", c, cOffset, cOffset + last * strideC, ldc, m, n);
        if (m == 0) return;
        if (alpha == 0f) {
            for (int q = 0; q < batch; q++) scale(m, n, beta, c, cOffset + q * strideC, ldc);
            return;
        }
        boolean par = pool.threads() > 1 && (long) m * n * k * batch >= parallelMinFmas
                && pool.shareable(a) && pool.shareable(c);
        int kcStep = bs[0].kcStep, panels = bs[0].panels;
        int mBlocks = ceilDiv(m, MC);
        // A whole number of row blocks per thread (9 blocks on 2 threads would leave one idle a ninth of the time).
        if (par && mBlocks * batch > 1) mBlocks = roundUp(mBlocks * batch, pool.threads()) / batch;
        int mcStep = roundUp(ceilDiv(m, mBlocks), MR);
        mBlocks = ceilDiv(m, mcStep);
        int nSplit = par ? Math.max(1, Math.min(panels, ceilDiv(2 * pool.threads(), mBlocks * batch))) : 1;
        int perSplit = ceilDiv(panels, nSplit);
        int fmBlocks = mBlocks;
        CpuPool.Task body = (t, th) -> {
            int q = t / (fmBlocks * nSplit), rest = t % (fmBlocks * nSplit);
            int ib = rest % fmBlocks, js = rest / fmBlocks;
            int ic = ib * mcStep, mc = Math.min(mcStep, m - ic);
            int p0 = js * perSplit, p1 = Math.min(panels, p0 + perSplit);
            if (p0 >= p1) return;
            PackedB pb = bs[q];
            long ao = aOffset + q * strideA, co = cOffset + q * strideC + (long) ic * ldc;
            float[] ap = aPack[th];
            if (ap == null || ap.length < mcStep * kcStep + L) {
                ap = aPack[th] = new float[Math.max(mcStep, roundUp(MC, MR)) * Math.max(kcStep, KC) + L];
            }
            for (int pc = 0; pc < k; pc += kcStep) {
                int kc = Math.min(kcStep, k - pc);
                packA(transA, a, ao, lda, ic, mc, pc, kc, ap, rowBuf(th, Math.max(mc, kc)));
                macro(ap, mc, kc, pb.data, pb.sliceBase(pc), p0, p1, 0, n, alpha, pc == 0 ? beta : 1f, c, co, ldc, edge[th]);
            }
        };
        int tasks = batch * mBlocks * nSplit;
        if (par && tasks > 1) pool.run(tasks, body);
        else for (int t = 0; t < tasks; t++) body.run(t, 0);
    }

    private static void checkOperand(String name, MemorySegment s, long offset, long lastOffset, int ld, int rows,
                                     int cols) {
        if (s == null) throw new IllegalArgumentException(name + ": must not be null");
        if (offset < 0) throw new IllegalArgumentException(name + "Offset: expected >= 0, got " + offset);
        if (ld < Math.max(1, cols)) {
            throw new IllegalArgumentException("ld" + name + ": expected >= " + Math.max(1, cols) + " (columns), got " + ld);
        }
        if (rows == 0 || cols == 0) return;
        long end = lastOffset + (long) (rows - 1) * ld + cols;
        long have = s.byteSize() / Float.BYTES;
        if (end > have) {
            throw new IllegalArgumentException(name + ": a " + rows + "x" + cols + " matrix at offset " + lastOffset
                    + " with leading dimension " + ld + " needs " + end + " floats, the segment holds " + have);
        }
    }

    private void scale(int m, int n, float beta, MemorySegment c, long cOff, int ldc) {
        for (int i = 0; i < m; i++) {
            long row = cOff + (long) i * ldc;
            for (int j = 0; j < n; j++) {
                long idx = row + j;
                c.setAtIndex(F32, idx, beta == 0f ? 0f : beta * c.getAtIndex(F32, idx));
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Packed path

    private void packed(boolean par, boolean transA, boolean transB, int m, int n, int k, float alpha,
                        MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                        float beta, MemorySegment c, long cOff, int ldc) {
        int kBlocks = ceilDiv(k, KC);
        int kcStep = ceilDiv(k, kBlocks);
        int mBlocks = ceilDiv(m, MC);
        int mcStep = roundUp(ceilDiv(m, mBlocks), MR);
        mBlocks = ceilDiv(m, mcStep);
        if (bPack == null) bPack = alignedFloats((long) KC * NC);
        MemorySegment bPack = this.bPack;
        for (int jc = 0; jc < n; jc += NC) {
            int nc = Math.min(NC, n - jc);
            int panels = ceilDiv(nc, NR);
            // Few row blocks: split the columns too so every thread has work.
            int nSplit = par ? Math.max(1, Math.min(panels, ceilDiv(2 * pool.threads(), mBlocks))) : 1;
            int panelsPerSplit = ceilDiv(panels, nSplit);
            for (int pc = 0; pc < k; pc += kcStep) {
                int kc = Math.min(kcStep, k - pc);
                float betaHere = pc == 0 ? beta : 1f;
                int fjc = jc, fpc = pc;
                int packTasks = par ? Math.min(panels, 4 * pool.threads()) : 1;
                int perPack = ceilDiv(panels, packTasks);
                if (par) {
                    pool.run(packTasks, (t, th) -> {
                        int p0 = t * perPack, p1 = Math.min(panels, p0 + perPack);
                        for (int p = p0; p < p1; p++) packBPanel(transB, b, bOff, ldb, fpc, kc, fjc, nc, p, bPack, p * kc * NR);
                    });
                } else {
                    for (int p = 0; p < panels; p++) packBPanel(transB, b, bOff, ldb, fpc, kc, fjc, nc, p, bPack, p * kc * NR);
                }
                int tasks = mBlocks * nSplit;
                int fmBlocks = mBlocks;
                CpuPool.Task body = (t, th) -> {
                    int ib = t % fmBlocks, js = t / fmBlocks;
                    int ic = ib * mcStep;
                    int mc = Math.min(mcStep, m - ic);
                    int p0 = js * panelsPerSplit, p1 = Math.min(panels, p0 + panelsPerSplit);
                    if (p0 >= p1) return;
                    float[] ap = aPack[th];
                    int need = roundUp(mc, MR) * kc;
                    if (ap == null || ap.length < need + L) ap = aPack[th] = new float[roundUp(mcStep, MR) * kcStep + L];
                    packA(transA, a, aOff, lda, ic, mc, fpc, kc, ap, rowBuf(th, Math.max(mc, kc)));
                    macro(ap, mc, kc, bPack, 0, p0, p1, fjc, nc, alpha, betaHere, c, cOff + (long) ic * ldc, ldc, edge[th]);
                };
                if (par) pool.run(tasks, body);
                else for (int t = 0; t < tasks; t++) body.run(t, 0);
            }
        }
    }

    /** Runs the micro-kernel over B panels [p0, p1) (outer, so each stays in L1) and the block's A panels. */
    private static void macro(float[] ap, int mc, int kc, MemorySegment bp, int bBase, int p0, int p1, int jc, int nc,
                              float alpha, float beta, MemorySegment c, long cOff, int ldc, float[] tile) {
        for (int p = p0; p < p1; p++) {
            int j = p * NR;
            int nr = Math.min(NR, nc - j);
            int bo = bBase + p * kc * NR;
            for (int i = 0; i < mc; i += MR) {
                int mr = Math.min(MR, mc - i);
                long cIdx = cOff + (long) i * ldc + jc + j;
                if (mr > 2) kernel(kc, ap, i * kc, bp, bo, tile);
                else kernel2(kc, ap, i * kc, bp, bo, tile);
                if (mr == MR && nr == NR) storeTile(tile, c, cIdx, ldc, alpha, beta);
                else storeEdge(tile, mr, nr, c, cIdx, ldc, alpha, beta);
            }
        }
    }

    /** Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) as MR-row panels, k-major, zero-padded. */
    private static void packA(boolean transA, MemorySegment a, long aOff, int lda, int i0, int mc, int p0, int kc,
                              float[] ap, float[] rowBuf) {
        if (transA) {
            // op(A)[i][p] = A[p][i]: read each stored row p in one contiguous copy and deal it out over the panels.
            // (Reading a few floats from each of kc rows instead strides by lda, often a multiple of 4 KiB, which
            // maps every row to the same L1 set.)
            for (int p = 0; p < kc; p++) {
                MemorySegment.copy(a, F32, (aOff + (long) (p0 + p) * lda + i0) * Float.BYTES, rowBuf, 0, mc);
                for (int ip = 0; ip < mc; ip += MR) {
                    int dst = ip * kc + p * MR;
                    int rows = Math.min(MR, mc - ip);
                    for (int r = 0; r < rows; r++) ap[dst + r] = rowBuf[ip + r];
                    for (int r = rows; r < MR; r++) ap[dst + r] = 0f;
                }
            }
            return;
        }
        for (int ip = 0; ip < mc; ip += MR) {
            int rows = Math.min(MR, mc - ip);
            int base = ip * kc;
            for (int r = 0; r < MR; r++) {
                if (r < rows) {
                    // One bulk copy of the row, then the scatter from a heap array: cheaper than kc segment reads.
                    MemorySegment.copy(a, F32, (aOff + (long) (i0 + ip + r) * lda + p0) * Float.BYTES, rowBuf, 0, kc);
                    for (int p = 0, d = base + r; p < kc; p++, d += MR) ap[d] = rowBuf[p];
                } else {
                    for (int p = 0; p < kc; p++) ap[base + p * MR + r] = 0f;
                }
            }
        }
    }

    /** Packs columns [jc + panel*NR, +NR) x depth [p0, p0+kc) of op(B), k-major, zero-padded. */
    private static void packBPanel(boolean transB, MemorySegment b, long bOff, int ldb, int p0, int kc,
                                   int jc, int nc, int panel, MemorySegment bp, int base) {
        int j0 = panel * NR;
        int cols = Math.min(NR, nc - j0);
        if (transB) {
            // op(B)[p][j] = B[j][p]: read each stored row along k, scatter with stride NR.
            for (int j = 0; j < NR; j++) {
                if (j < cols) {
                    long src = bOff + (long) (jc + j0 + j) * ldb + p0;
                    for (int p = 0; p < kc; p++) bp.setAtIndex(F32, base + p * NR + j, b.getAtIndex(F32, src + p));
                } else {
                    for (int p = 0; p < kc; p++) bp.setAtIndex(F32, base + p * NR + j, 0f);
                }
            }
        } else if (cols == NR) {
            for (int p = 0; p < kc; p++) {
                long src = (bOff + (long) (p0 + p) * ldb + jc + j0) * Float.BYTES;
                int dst = base + p * NR;
                FloatVector.fromMemorySegment(S, b, src, NATIVE).intoMemorySegment(bp, (long) dst * Float.BYTES, NATIVE);
                FloatVector.fromMemorySegment(S, b, src + (long) L * Float.BYTES, NATIVE)
                        .intoMemorySegment(bp, (long) (dst + L) * Float.BYTES, NATIVE);
            }
        } else {
            for (int p = 0; p < kc; p++) {
                long src = bOff + (long) (p0 + p) * ldb + jc + j0;
                int dst = base + p * NR;
                for (int j = 0; j < cols; j++) bp.setAtIndex(F32, dst + j, b.getAtIndex(F32, src + j));
                for (int j = cols; j < NR; j++) bp.setAtIndex(F32, dst + j, 0f);
            }
        }
    }

    /**
     * The MR x NR micro-kernel over packed panels. It leaves its sums in {@code tile} rather than updating C
     * itself: C2 must inline everything that touches the twelve accumulators or it boxes them, and the C update
     * is too large to inline alongside the loop.
     */
    static void kernel(int kc, float[] ap, int ao, MemorySegment bp, int bo, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        // Induction variables stepped directly rather than recomputed from p: C2 then keeps the loop free of
        // per-iteration index arithmetic and bounds checks (measured: 43 -> 73 GFLOP/s on one thread).
        int ai = ao;
        for (long bi = (long) bo * Float.BYTES, bEnd = bi + (long) kc * NR * Float.BYTES; bi < bEnd;
             bi += NR * Float.BYTES, ai += MR) {
            FloatVector b0 = FloatVector.fromMemorySegment(S, bp, bi, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, bp, bi + L * Float.BYTES, NATIVE);
            FloatVector x = FloatVector.broadcast(S, ap[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, ap[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, ap[ai + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, ap[ai + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, ap[ai + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, ap[ai + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + L);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + L);
    }

    /**
     * The first two rows of a tile cut by C's bottom edge (M = 32 leaves two), cheaper than the full kernel on
     * four rows of zero padding. Depth is unrolled by two into separate accumulators: eight independent FMA
     * chains cover the FMA latency as the full kernel's twelve do.
     */
    static void kernel2(int kc, float[] ap, int ao, MemorySegment bp, int bo, float[] tile) {
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00;
        FloatVector d00 = c00, d01 = c00, d10 = c00, d11 = c00;
        int p = kc & ~1;
        int ai = ao;
        for (long bi = (long) bo * Float.BYTES, bEnd = bi + (long) p * NR * Float.BYTES; bi < bEnd;
             bi += 2 * NR * Float.BYTES, ai += 2 * MR) {
            FloatVector b0 = FloatVector.fromMemorySegment(S, bp, bi, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, bp, bi + L * Float.BYTES, NATIVE);
            FloatVector b2 = FloatVector.fromMemorySegment(S, bp, bi + NR * Float.BYTES, NATIVE);
            FloatVector b3 = FloatVector.fromMemorySegment(S, bp, bi + (NR + L) * Float.BYTES, NATIVE);
            FloatVector x = FloatVector.broadcast(S, ap[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, ap[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, ap[ai + MR]);
            d00 = x.fma(b2, d00);
            d01 = x.fma(b3, d01);
            x = FloatVector.broadcast(S, ap[ai + MR + 1]);
            d10 = x.fma(b2, d10);
            d11 = x.fma(b3, d11);
        }
        if (p < kc) {
            long bi = (long) (bo + p * NR) * Float.BYTES;
            ai = ao + p * MR;
            FloatVector b0 = FloatVector.fromMemorySegment(S, bp, bi, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, bp, bi + L * Float.BYTES, NATIVE);
            FloatVector x = FloatVector.broadcast(S, ap[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, ap[ai + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
        }
        c00.add(d00).intoArray(tile, 0);
        c01.add(d01).intoArray(tile, L);
        c10.add(d10).intoArray(tile, NR);
        c11.add(d11).intoArray(tile, NR + L);
    }

    /** C[r][0:NR] = alpha * tile[r] + beta * C[r] for the MR rows of a whole tile. */
    private static void storeTile(float[] tile, MemorySegment c, long cIdx, int ldc, float alpha, float beta) {
        storeRows(tile, MR, c, cIdx, ldc, alpha, beta);
    }

    /** C[r][0:NR] = alpha * tile[r] + beta * C[r] for the first {@code rows} rows of a tile. */
    private static void storeRows(float[] tile, int rows, MemorySegment c, long cIdx, int ldc, float alpha, float beta) {
        FloatVector va = FloatVector.broadcast(S, alpha);
        for (int r = 0; r < rows; r++) {
            long off = (cIdx + (long) r * ldc) * Float.BYTES;
            for (int h = 0; h < NR; h += L) {
                FloatVector v = FloatVector.fromArray(S, tile, r * NR + h).mul(va);
                long o = off + (long) h * Float.BYTES;
                if (beta != 0f) v = FloatVector.fromMemorySegment(S, c, o, NATIVE).fma(FloatVector.broadcast(S, beta), v);
                v.intoMemorySegment(c, o, NATIVE);
            }
        }
    }

    private static void storeEdge(float[] tile, int mr, int nr, MemorySegment c, long cIdx, int ldc,
                                  float alpha, float beta) {
        for (int r = 0; r < mr; r++) {
            long row = cIdx + (long) r * ldc;
            for (int j = 0; j < nr; j++) {
                float v = alpha * tile[r * NR + j];
                c.setAtIndex(F32, row + j, beta == 0f ? v : v + beta * c.getAtIndex(F32, row + j));
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Direct (unpacked) path for small M with an untransposed A

    private void direct(boolean par, boolean transB, int m, int n, int k, float alpha,
                        MemorySegment a, long aOff, int lda, long strideA, MemorySegment b, long bOff, int ldb, long strideB,
                        float beta, MemorySegment c, long cOff, int ldc, long strideC, int batch) {
        // Column chunks of whole register blocks, a few per thread so uneven finishing evens out; a task never
        // spans two products of the batch.
        int unit = transB ? DOT_NB : 2 * L;
        int units = ceilDiv(n, unit);
        int perBatch = par ? Math.min(units, Math.max(1, ceilDiv(2 * pool.threads(), batch))) : 1;
        int perTask = ceilDiv(units, perBatch);
        CpuPool.Task body = (t, th) -> {
            int q = t / perBatch, chunk = t % perBatch;
            int j0 = chunk * perTask * unit;
            int j1 = Math.min(n, j0 + perTask * unit);
            if (j0 >= j1) return;
            long ao = aOff + q * strideA, bo = bOff + q * strideB, co = cOff + q * strideC;
            if (transB) dotRange(m, j0, j1, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc);
            else axpyRange(m, j0, j1, k, alpha, a, ao, lda, b, bo, ldb, beta, c, co, ldc, edge[th]);
        };
        int tasks = batch * perBatch;
        if (par && tasks > 1) pool.run(tasks, body);
        else for (int t = 0; t < tasks; t++) body.run(t, 0);
    }

    /** Rows of A per dot-product register block. */
    private static final int DOT_MB = 4;
    /** Rows of B (columns of C) per dot-product register block. */
    private static final int DOT_NB = 3;

    /** C[:, j0:j1] for op(B) = Bᵀ: each C element is a dot product of two contiguous rows. */
    private static void dotRange(int m, int j0, int j1, int k, float alpha, MemorySegment a, long aOff, int lda,
                                 MemorySegment b, long bOff, int ldb, float beta, MemorySegment c, long cOff, int ldc) {
        int kv = k - k % L;
        int j = j0;
        for (; j + DOT_NB <= j1; j += DOT_NB) {
            int i = 0;
            for (; i + DOT_MB <= m; i += DOT_MB) {
                dot4x3(i, j, k, kv, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            }
            for (; i < m; i++) {
                for (int jj = j; jj < j + DOT_NB; jj++) dot1(i, jj, k, kv, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            }
        }
        for (; j < j1; j++) {
            for (int i = 0; i < m; i++) dot1(i, j, k, kv, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        }
    }

    private static void dot4x3(int i, int j, int k, int kv, float alpha, MemorySegment a, long aOff, int lda,
                               MemorySegment b, long bOff, int ldb, float beta, MemorySegment c, long cOff, int ldc) {
        long a0 = (aOff + (long) i * lda) * Float.BYTES, la = (long) lda * Float.BYTES;
        long a1 = a0 + la, a2 = a1 + la, a3 = a2 + la;
        long b0 = (bOff + (long) j * ldb) * Float.BYTES, lb = (long) ldb * Float.BYTES;
        long b1 = b0 + lb, b2 = b1 + lb;
        FloatVector s00 = FloatVector.zero(S), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
        FloatVector s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
        for (int p = 0; p < kv; p += L) {
            long o = (long) p * Float.BYTES;
            FloatVector y0 = FloatVector.fromMemorySegment(S, b, b0 + o, NATIVE);
            FloatVector y1 = FloatVector.fromMemorySegment(S, b, b1 + o, NATIVE);
            FloatVector y2 = FloatVector.fromMemorySegment(S, b, b2 + o, NATIVE);
            FloatVector x = FloatVector.fromMemorySegment(S, a, a0 + o, NATIVE);
            s00 = x.fma(y0, s00);
            s01 = x.fma(y1, s01);
            s02 = x.fma(y2, s02);
            x = FloatVector.fromMemorySegment(S, a, a1 + o, NATIVE);
            s10 = x.fma(y0, s10);
            s11 = x.fma(y1, s11);
            s12 = x.fma(y2, s12);
            x = FloatVector.fromMemorySegment(S, a, a2 + o, NATIVE);
            s20 = x.fma(y0, s20);
            s21 = x.fma(y1, s21);
            s22 = x.fma(y2, s22);
            x = FloatVector.fromMemorySegment(S, a, a3 + o, NATIVE);
            s30 = x.fma(y0, s30);
            s31 = x.fma(y1, s31);
            s32 = x.fma(y2, s32);
        }
        float[] r = {
                CpuMath.sumLanes(s00), CpuMath.sumLanes(s01), CpuMath.sumLanes(s02),
                CpuMath.sumLanes(s10), CpuMath.sumLanes(s11), CpuMath.sumLanes(s12),
                CpuMath.sumLanes(s20), CpuMath.sumLanes(s21), CpuMath.sumLanes(s22),
                CpuMath.sumLanes(s30), CpuMath.sumLanes(s31), CpuMath.sumLanes(s32)};
        for (int ii = 0; ii < DOT_MB; ii++) {
            long ar = aOff + (long) (i + ii) * lda;
            long cr = cOff + (long) (i + ii) * ldc + j;
            for (int jj = 0; jj < DOT_NB; jj++) {
                float s = r[ii * DOT_NB + jj];
                long br = bOff + (long) (j + jj) * ldb;
                for (int p = kv; p < k; p++) s += a.getAtIndex(F32, ar + p) * b.getAtIndex(F32, br + p);
                float v = alpha * s;
                c.setAtIndex(F32, cr + jj, beta == 0f ? v : v + beta * c.getAtIndex(F32, cr + jj));
            }
        }
    }

    private static void dot1(int i, int j, int k, int kv, float alpha, MemorySegment a, long aOff, int lda,
                             MemorySegment b, long bOff, int ldb, float beta, MemorySegment c, long cOff, int ldc) {
        long ar = aOff + (long) i * lda, br = bOff + (long) j * ldb;
        FloatVector acc = FloatVector.zero(S);
        for (int p = 0; p < kv; p += L) {
            acc = FloatVector.fromMemorySegment(S, a, (ar + p) * Float.BYTES, NATIVE)
                    .fma(FloatVector.fromMemorySegment(S, b, (br + p) * Float.BYTES, NATIVE), acc);
        }
        float s = CpuMath.sumLanes(acc);
        for (int p = kv; p < k; p++) s += a.getAtIndex(F32, ar + p) * b.getAtIndex(F32, br + p);
        long ci = cOff + (long) i * ldc + j;
        float v = alpha * s;
        c.setAtIndex(F32, ci, beta == 0f ? v : v + beta * c.getAtIndex(F32, ci));
    }

    /** C[:, j0:j1] for op(B) = B: rows of C accumulate broadcast A elements times rows of B. */
    private static void axpyRange(int m, int j0, int j1, int k, float alpha, MemorySegment a, long aOff, int lda,
                                  MemorySegment b, long bOff, int ldb, float beta, MemorySegment c, long cOff, int ldc,
                                  float[] tile) {
        int j = j0;
        for (; j + 2 * L <= j1; j += 2 * L) {
            int i = 0;
            for (; i + MR <= m; i += MR) {
                axpy6(i, j, k, a, aOff, lda, b, bOff, ldb, tile);
                storeTile(tile, c, cOff + (long) i * ldc + j, ldc, alpha, beta);
            }
            for (; i + 2 <= m; i += 2) {
                axpy2(i, j, k, a, aOff, lda, b, bOff, ldb, tile);
                storeRows(tile, 2, c, cOff + (long) i * ldc + j, ldc, alpha, beta);
            }
            if (i < m) axpy1(i, j, 2 * L, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        }
        if (j < j1) {
            for (int i = 0; i < m; i++) axpy1(i, j, j1 - j, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
        }
    }

    private static void axpy6(int i, int j, int k, MemorySegment a, long aOff, int lda,
                              MemorySegment b, long bOff, int ldb, float[] tile) {
        long a0 = aOff + (long) i * lda;
        long a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        long bRow = (bOff + j) * Float.BYTES, lb = (long) ldb * Float.BYTES, half = (long) L * Float.BYTES;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int p = 0; p < k; p++) {
            long bo = bRow + p * lb;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bo, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, b, bo + half, NATIVE);
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F32, a0 + p));
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a1 + p));
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a2 + p));
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a3 + p));
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a4 + p));
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a5 + p));
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + L);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + L);
    }

    /** Two rows of C over 2L columns; depth unrolled by two so that eight FMA chains hide the FMA latency. */
    private static void axpy2(int i, int j, int k, MemorySegment a, long aOff, int lda,
                              MemorySegment b, long bOff, int ldb, float[] tile) {
        long a0 = aOff + (long) i * lda, a1 = a0 + lda;
        long bRow = (bOff + j) * Float.BYTES, lb = (long) ldb * Float.BYTES, half = (long) L * Float.BYTES;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00;
        FloatVector d00 = c00, d01 = c00, d10 = c00, d11 = c00;
        int p = 0;
        for (; p + 1 < k; p += 2) {
            long bo = bRow + p * lb;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bo, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, b, bo + half, NATIVE);
            FloatVector b2 = FloatVector.fromMemorySegment(S, b, bo + lb, NATIVE);
            FloatVector b3 = FloatVector.fromMemorySegment(S, b, bo + lb + half, NATIVE);
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F32, a0 + p));
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a1 + p));
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a0 + p + 1));
            d00 = x.fma(b2, d00);
            d01 = x.fma(b3, d01);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a1 + p + 1));
            d10 = x.fma(b2, d10);
            d11 = x.fma(b3, d11);
        }
        if (p < k) {
            long bo = bRow + p * lb;
            FloatVector b0 = FloatVector.fromMemorySegment(S, b, bo, NATIVE);
            FloatVector b1 = FloatVector.fromMemorySegment(S, b, bo + half, NATIVE);
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F32, a0 + p));
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a.getAtIndex(F32, a1 + p));
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
        }
        c00.add(d00).intoArray(tile, 0);
        c01.add(d01).intoArray(tile, L);
        c10.add(d10).intoArray(tile, NR);
        c11.add(d11).intoArray(tile, NR + L);
    }

    /** One row of C over columns [j, j+w), w <= 2L: vectors where whole, scalars at the tail. */
    private static void axpy1(int i, int j, int w, int k, float alpha, MemorySegment a, long aOff, int lda,
                              MemorySegment b, long bOff, int ldb, float beta, MemorySegment c, long cOff, int ldc) {
        long ar = aOff + (long) i * lda;
        long cr = cOff + (long) i * ldc + j;
        int jv = 0;
        for (; jv + L <= w; jv += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int p = 0; p < k; p++) {
                acc = FloatVector.broadcast(S, a.getAtIndex(F32, ar + p))
                        .fma(FloatVector.fromMemorySegment(S, b, (bOff + (long) p * ldb + j + jv) * Float.BYTES, NATIVE), acc);
            }
            long co = (cr + jv) * Float.BYTES;
            FloatVector v = acc.mul(alpha);
            if (beta != 0f) v = FloatVector.fromMemorySegment(S, c, co, NATIVE).fma(FloatVector.broadcast(S, beta), v);
            v.intoMemorySegment(c, co, NATIVE);
        }
        for (; jv < w; jv++) {
            float s = 0f;
            for (int p = 0; p < k; p++) s += a.getAtIndex(F32, ar + p) * b.getAtIndex(F32, bOff + (long) p * ldb + j + jv);
            float v = alpha * s;
            c.setAtIndex(F32, cr + jv, beta == 0f ? v : v + beta * c.getAtIndex(F32, cr + jv));
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    private static int roundUp(int a, int b) {
        return ceilDiv(a, b) * b;
    }

    /** Stops the pool's threads when this GEMM owns its pool. */
    @Override
    public void close() {
        if (ownsPool) pool.close();
    }
}
