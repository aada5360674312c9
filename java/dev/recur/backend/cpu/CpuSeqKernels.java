package dev.recur.backend.cpu;

import dev.recur.backend.Kernels;
import dev.recur.config.DropoutMask;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The whole-sequence forward kernels of {@link Kernels#SINGLE_GROUP} ({@code lstm_seq_fwd}, {@code gru_seq_fwd},
 * {@code rnn_seq_fwd}) on the cpu backend: one launch runs a layer's whole recurrence, both directions.
 *
 * <p>What it computes, for s = 0..T-1 (the same as the per-step path of the schedule, see
 * {@code kernels/common/persist.h}):
 * <pre>
 *   hw[d,b,:] = hsrc[d,b,:] W_hh[d]ᵀ        hsrc = h, or hin = h ⊙ recurrent mask when thresh != 0
 *   then the cell's step body (lstm.h / gru.h / rnn.h) for every unit j, row b, direction d
 * </pre>
 * with the arguments of the OpenCL kernels ({@code whhT} is {@code [D, H, G*H]}; {@code hw} is not used: the
 * products stay in per-thread scratch). Launch shape: the grid is ignored; the work runs on the backend's pool.
 *
 * <p>Why a fused kernel: the per-step path hands two batches per step to the pool (the recurrent GEMM, then the
 * pointwise pass) and reads {@code W_hh} in place, where its 4-KiB row stride maps a column panel onto one L1
 * set. Here the hidden units are cut into chunks and every chunk, for the whole sequence, multiplies the
 * previous state by its own columns of {@code W_hh} (all gates of its units; packed once per weight version by
 * the backend's pack cache, so a thread re-reads the same panels from L2 at every step), runs the gate math
 * for its units straight from that product, and writes its part of the next state. The state the products read
 * is double buffered and kept in the micro-kernel's packed-row layout, so writing it is the only packing per step.
 *
 * <p>Chunks ({@link Split}): where the batch (or the directions) gives every thread work, a chunk is a group of
 * rows of one direction with every unit. Rows of a recurrence never mix, so a chunk runs its whole sequence with
 * no barrier at all, and a thread the OS delays delays only its own rows. Otherwise (B = 1, say) a chunk is a
 * block of units over every row, and one barrier per step separates the steps, as the next product reads every
 * unit's state; threads then run their own chunks (the same columns every step, so the weights stay in their
 * caches) and take another's only when it is late. A thread waits only for chunks another running thread has
 * claimed, so a worker the OS does not schedule slows a step down but cannot deadlock it.
 *
 * <p>Launches are serialised (each entry point is synchronized): the state buffers and the per-thread scratch
 * are shared between launches.
 */
final class CpuSeqKernels {
    private static final int MR = CpuGemm.MR, NR = CpuGemm.NR;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    /** Below this many multiply-adds per step one thread runs the layer (a barrier costs about a microsecond). */
    static final long PARALLEL_MIN_MACS = 1L << 15;
    /**
     * Below this many multiply-adds in a whole launch, a launch split by rows runs on one thread: its threads meet
     * only at the end, so what it must pay for is one hand-off to the pool (see {@code CpuBackend.Thresholds}).
     */
    static final long PARALLEL_MIN_LAUNCH_MACS = 1L << 23;
    /**
     * Chunks per thread. One: wider chunks make the per-row copies between the buffers and the scratch rows longer
     * (their fixed cost dominated with 64-unit chunks: LSTM T=50 B=32 H=256 fwd_bwd median 74-80 ms at one chunk
     * per thread, 87-97 at two); a thread that falls behind can still hand whole chunks to the others.
     */
    private static final int CHUNKS_PER_THREAD = 1;

    /** The backend's cache of packed weight matrices. */
    @FunctionalInterface
    interface Packer {
        /** {@code batch} matrices [k, n] (row stride {@code ld}, {@code stride} apart from {@code off}), packed. */
        CpuGemm.PackedB[] packed(CpuBuffer b, long off, int ld, long stride, int k, int n, int batch);
    }

    /**
     * How a launch is cut into chunks. UNITS: (direction, block of hidden units) over every row, with a barrier
     * per step (the next product reads every unit). ROWS: (direction, group of rows) over every unit; rows never
     * mix, so each chunk runs its whole sequence alone, with no barrier, and a late thread delays only itself,
     * at the price of every thread streaming the direction's whole {@code W_hh} each step. AUTO: ROWS when
     * directions times row panels give every thread a chunk, else UNITS (B = 1, for instance).
     */
    enum Split {
        AUTO, ROWS, UNITS;

        /** The split named by {@value #PROPERTY} (auto when unset). */
        static Split fromProperty() {
            String v = System.getProperty(PROPERTY, "auto").trim();
            for (Split s : values()) if (s.name().equalsIgnoreCase(v)) return s;
            throw new IllegalArgumentException(PROPERTY + ": expected auto, rows or units, got '" + v + "'");
        }

        static final String PROPERTY = "recur.cpu.seqSplit";
    }

    private final CpuPool pool;
    private final Packer packer;
    private final long parallelMinMacs;
    /** Row split: below this many multiply-adds in the whole launch one thread runs it (one hand-off per launch). */
    private final long parallelMinLaunchMacs;
    private final Split split;
    /** Per-thread scratch, grown on demand and kept: [thread][slot]. */
    private final float[][][] scratch;
    /** The two state buffers the products read, in packed-row layout; kept between launches. */
    private float[] stateA = new float[0], stateB = new float[0];

    CpuSeqKernels(CpuPool pool, Packer packer, long parallelMinMacs, long parallelMinLaunchMacs, Split split) {
        this.pool = pool;
        this.packer = packer;
        this.parallelMinMacs = parallelMinMacs;
        this.parallelMinLaunchMacs = parallelMinLaunchMacs;
        this.split = split;
        this.scratch = new float[pool.threads()][12][];
    }

    private float[] buf(int thread, int slot, int size) {
        float[] b = scratch[thread][slot];
        if (b == null || b.length < size) b = scratch[thread][slot] = new float[Math.max(size, 64)];
        return b;
    }

    // ------------------------------------------------------------------------------------------------------
    // The shared machinery: chunks, the packed state, the per-step product, the step barrier

    /**
     * One launch: sizes, the packed weights and the layout of the state the products read. The product of a
     * chunk is {@code state[d] (B x K) times W[d] (K x blocks*H)}, restricted to the columns
     * {@code q*H + j0 .. q*H + j0 + nu} of every block q: forward, K = H and the blocks are the gates; backward,
     * K = G*H (the gate gradients) and one block (the units of dh).
     */
    private final class Layer {
        final int T, B, H, D, blocks, K, mPad, kcStep, units, perDir, chunks;
        /** Row split: chunks are (direction, group of row panels) with every unit, and need no barrier. */
        final boolean rows;
        /** Row groups per direction (row split). */
        final int groups;
        final int[] lens;
        final CpuGemm.PackedB[] w;

        Layer(int T, int B, int H, int D, int blocks, int K, MemorySegment lengths, CpuBuffer wBuf) {
            this.T = T;
            this.B = B;
            this.H = H;
            this.D = D;
            this.blocks = blocks;
            this.K = K;
            this.mPad = (B + MR - 1) / MR * MR;
            int n = blocks * H;
            this.w = packer.packed(wBuf, 0, n, (long) K * n, K, n, D);
            this.kcStep = w[0].kcStep;
            this.lens = new int[B];
            for (int b = 0; b < B; b++) lens[b] = lengths.getAtIndex(I32, b);
            int threads = pool.threads(), panels = mPad / MR;
            int gp = Math.min(panels, Math.max(1, (threads + D - 1) / D));
            this.rows = split == Split.ROWS || (split == Split.AUTO && D * gp >= threads);
            this.groups = rows ? gp : 1;
            // Unit split: whole panels of units where H allows; tiny H is one chunk per direction.
            int want = Math.max(1, CHUNKS_PER_THREAD * threads / D);
            int u = (H + want - 1) / want;
            u = rows || H < NR ? H : Math.min(H, (u + NR - 1) / NR * NR);
            this.units = u;
            this.perDir = (H + u - 1) / u;
            this.chunks = rows ? D * groups : D * perDir;
        }

        int dir(int chunk) {
            return rows ? chunk / groups : chunk / perDir;
        }

        int j0(int chunk) {
            return rows ? 0 : (chunk % perDir) * units;
        }

        int nu(int chunk) {
            return Math.min(units, H - j0(chunk));
        }

        /** First row of a chunk: a whole number of row panels, so chunks share no panel of the packed state. */
        int b0(int chunk) {
            return rows ? Math.min(B, (chunk % groups) * (mPad / MR) / groups * MR) : 0;
        }

        /** End of a chunk's rows. */
        int b1(int chunk) {
            return rows ? Math.min(B, ((chunk % groups) + 1) * (mPad / MR) / groups * MR) : B;
        }

        /** Both state buffers sized for this layer and cleared (padding rows stay zero). */
        void clearState() {
            int size = D * mPad * K;
            if (stateA.length < size) {
                stateA = new float[size];
                stateB = new float[size];
            }
            java.util.Arrays.fill(stateA, 0, size, 0f);
            java.util.Arrays.fill(stateB, 0, size, 0f);
        }

        /** Writes {@code v[vo..vo+nu)} as state units j0.. of row (d, b), in the packed-row layout. */
        void put(float[] a, int d, int b, int j0, float[] v, int vo, int nu) {
            int base = d * mPad * K, rb = b - b % MR, rr = b % MR, end = j0 + nu;
            for (int j = j0; j < end; ) {
                int pc = j / kcStep * kcStep, kc = Math.min(kcStep, K - pc), stop = Math.min(end, pc + kc);
                for (int i = base + pc * mPad + rb * kc + (j - pc) * MR + rr; j < stop; j++, i += MR) a[i] = v[vo + j - j0];
            }
        }

        /** Zeroes units j0.. of row (d, b) of a state buffer. */
        void clear(float[] a, int d, int b, int j0, int nu) {
            int base = d * mPad * K, rb = b - b % MR, rr = b % MR, end = j0 + nu;
            for (int j = j0; j < end; ) {
                int pc = j / kcStep * kcStep, kc = Math.min(kcStep, K - pc), stop = Math.min(end, pc + kc);
                for (int i = base + pc * mPad + rb * kc + (j - pc) * MR + rr; j < stop; j++, i += MR) a[i] = 0f;
            }
        }

        /** Carries units j0.. of row (d, b) unchanged into the next state (a finished sequence). */
        void carry(float[] from, float[] to, int d, int b, int j0, int nu) {
            int base = d * mPad * K, rb = b - b % MR, rr = b % MR, end = j0 + nu;
            for (int j = j0; j < end; ) {
                int pc = j / kcStep * kcStep, kc = Math.min(kcStep, K - pc), stop = Math.min(end, pc + kc);
                for (int i = base + pc * mPad + rb * kc + (j - pc) * MR + rr; j < stop; j++, i += MR) to[i] = from[i];
            }
        }

        /**
         * g[q*nb*nu + (b-b0)*nu + u] = sum_p state[d,b,p] W[d][p, q*H + j0 + u] for the chunk's rows
         * b0 <= b < b1, nb = b1-b0 (gate-major, so each gate's activation is one pass over the rows): the chunk's
         * columns of every gate, one NR-wide weight panel at a time (that panel stays in L1 over the row panels).
         */
        void product(float[] a, int d, int j0, int nu, int b0, int b1, float[] g, float[] tile) {
            CpuGemm.PackedB wd = w[d];
            int aBase = d * mPad * K, bn = (b1 - b0) * nu;
            for (int q = 0; q < blocks; q++) {
                int c0 = q * H + j0, c1 = c0 + nu;
                for (int p = c0 / NR; p * NR < c1; p++) {
                    int pcol = p * NR, lo = Math.max(c0, pcol), hi = Math.min(c1, pcol + NR);
                    for (int pc = 0; pc < K; pc += kcStep) {
                        int kc = Math.min(kcStep, K - pc);
                        int bo = wd.sliceBase(pc) + p * kc * NR, ab = aBase + pc * mPad;
                        for (int ip = b0; ip < b1; ip += MR) {
                            int mr = Math.min(MR, b1 - ip);
                            if (mr > 2) CpuGemm.kernel(kc, a, ab + ip * kc, wd.data, bo, tile);
                            else CpuGemm.kernel2(kc, a, ab + ip * kc, wd.data, bo, tile);
                            for (int r = 0; r < mr; r++) {
                                int gi = q * bn + (ip - b0 + r) * nu - c0 + lo, ti = r * NR - pcol + lo;
                                if (pc == 0) System.arraycopy(tile, ti, g, gi, hi - lo);
                                else CpuRows.add(g, gi, tile, ti, hi - lo);
                            }
                        }
                    }
                }
            }
        }
    }

    /** One phase (a step) of one chunk; {@code cur} is the state the products read, {@code next} the one written. */
    @FunctionalInterface
    private interface Phase {
        void run(int phase, int chunk, float[] cur, float[] next, int thread);
    }

    /** Packs the initial state {@code hsrc [D,B,H]} into the first state buffer (forward: K = H). */
    private void initState(Layer l, MemorySegment hsrc) {
        l.clearState();
        float[] row = new float[l.K];
        for (int d = 0; d < l.D; d++) {
            for (int b = 0; b < l.B; b++) {
                MemorySegment.copy(hsrc, F32, ((long) (d * l.B + b) * l.K) * Float.BYTES, row, 0, l.K);
                l.put(stateA, d, b, 0, row, 0, l.K);
            }
        }
    }

    /**
     * Runs {@code phases} phases of every chunk: phase i reads state buffer i%2 and writes the other. Unit split:
     * a barrier after each phase; a thread takes its own chunks first, then any unclaimed one. Row split: a
     * thread claims a whole chunk and runs all its phases.
     */
    private void run(Layer l, int phases, Phase body, boolean shareable) {
        long macs = (long) l.D * l.B * l.blocks * l.H * l.K;
        // The unit split meets at a barrier every step, the row split only at the end of the launch.
        boolean worth = l.rows ? macs * phases >= parallelMinLaunchMacs : macs >= parallelMinMacs;
        int participants = shareable && worth ? Math.min(pool.threads(), l.chunks) : 1;
        AtomicIntegerArray claims = new AtomicIntegerArray(l.chunks);
        AtomicInteger done = new AtomicInteger();
        Throwable[] failure = new Throwable[1];
        CpuPool.Task task = l.rows ? (part, th) -> {
            for (int c = 0; c < l.chunks; c++) {
                if (claims.get(c) != 0 || !claims.compareAndSet(c, 0, 1)) continue;
                try {
                    for (int s = 0; s < phases && failure[0] == null; s++) {
                        body.run(s, c, (s & 1) == 0 ? stateA : stateB, (s & 1) == 0 ? stateB : stateA, th);
                    }
                } catch (Throwable e) {
                    recordFailure(failure, e);
                }
            }
        } : (part, th) -> {
            int first = part * l.chunks / participants, end = (part + 1) * l.chunks / participants;
            for (int s = 0; s < phases; s++) {
                float[] cur = (s & 1) == 0 ? stateA : stateB, next = (s & 1) == 0 ? stateB : stateA;
                long start = System.nanoTime();
                for (int c = first; c < end; c++) claimAndRun(claims, c, s, done, failure, body, cur, next, th);
                // Another thread's chunk is taken only once it is clearly late (half this thread's own time):
                // taken at once, an owner a microsecond behind would find nothing left and idle a whole step.
                long mine = System.nanoTime() - start, waitFrom = System.nanoTime();
                int target = (s + 1) * l.chunks, spins = 0;
                while (done.get() < target) {
                    if ((spins & 63) == 0 && System.nanoTime() - waitFrom > mine / 2) {
                        for (int c = 0; c < l.chunks; c++) claimAndRun(claims, c, s, done, failure, body, cur, next, th);
                    }
                    if (++spins < 1 << 14) Thread.onSpinWait();
                    else Thread.yield();
                }
            }
        };
        if (participants > 1) pool.run(participants, task);
        else task.run(0, 0);
        if (failure[0] instanceof RuntimeException re) throw re;
        if (failure[0] instanceof Error e) throw e;
        if (failure[0] != null) throw new IllegalStateException("sequence kernel failed", failure[0]);
    }

    /** Runs chunk c's phase s if no other thread has taken it, and counts it done (even when it throws). */
    private static void claimAndRun(AtomicIntegerArray claims, int c, int s, AtomicInteger done, Throwable[] failure,
                                    Phase body, float[] cur, float[] next, int th) {
        if (claims.get(c) != s || !claims.compareAndSet(c, s, s + 1)) return;
        try {
            if (failure[0] == null) body.run(s, c, cur, next, th);
        } catch (Throwable e) {
            recordFailure(failure, e);
        } finally {
            done.incrementAndGet();
        }
    }

    /** Keeps the first failure of a launch: the one rethrown once every thread has stopped. */
    private static void recordFailure(Throwable[] failure, Throwable e) {
        synchronized (failure) {
            if (failure[0] == null) failure[0] = e;
        }
    }

    /** Forward phases: the product of the chunk's gate columns (skipped once every sequence has ended), then the cell. */
    private void forward(Layer l, ChunkStep step, boolean shareable) {
        int maxLen = 0;
        for (int len : l.lens) maxLen = Math.max(maxLen, len);
        int active = Math.min(l.T, maxLen);
        run(l, l.T, (s, c, cur, next, th) -> {
            int d = l.dir(c), j0 = l.j0(c), nu = l.nu(c), b0 = l.b0(c), b1 = l.b1(c);
            float[] g = buf(th, 7, (b1 - b0) * l.blocks * nu);
            if (s < active) l.product(cur, d, j0, nu, b0, b1, g, buf(th, 6, MR * NR));
            step.run(d, s, j0, nu, b0, b1, g, cur, next, th);
        }, shareable);
    }

    /**
     * A cell's step for one chunk (direction d, units j0..j0+nu, rows b0..b1): {@code g} holds the products,
     * gate-major ({@code g[q*nb*nu + (b-b0)*nu + u]}, nb = b1-b0); the step overwrites it. {@code cur} and {@code next} are the
     * state buffers the products read now and at the next step.
     */
    @FunctionalInterface
    private interface ChunkStep {
        void run(int d, int s, int j0, int nu, int b0, int b1, float[] g, float[] cur, float[] next, int thread);
    }

    private static boolean shareable(CpuPool pool, CpuKernels.Args a) {
        for (MemorySegment m : a.segs) if (m != null && !pool.shareable(m)) return false;
        return true;
    }

    private static float[] heap(MemorySegment s, long count) {
        float[] v = new float[(int) count];
        MemorySegment.copy(s, F32, 0, v, 0, (int) count);
        return v;
    }

    private static long tbd(int t, int b, int d, int B, int D, int W, int j) {
        return ((long) (t * B + b) * D + d) * W + j;
    }

    private static long dbw(int d, int b, int B, int W, int j) {
        return (long) (d * B + b) * W + j;
    }

    private static void zero(MemorySegment s, long from, int count) {
        s.asSlice(from * Float.BYTES, (long) count * Float.BYTES).fill((byte) 0);
    }

    private static int prefix(int seedLo, int seedHi, int layer, int d) {
        return CpuRows.maskPrefix(seedLo, seedHi, DropoutMask.stream(layer, d, DropoutMask.RECURRENT));
    }

    /**
     * Row (d, b)'s new state {@code v[vo..vo+nu)} for units j0..: into the next step's product input, and under
     * recurrent dropout masked first and also kept in {@code hin} (the per-step kernels' h~).
     */
    private static void emitState(Layer l, float[] next, int d, int b, int j0, int nu, float[] v, int vo, float[] hm,
                                  MemorySegment hin, long sh, int prefix, int thresh, float scale) {
        if (thresh == 0) {
            l.put(next, d, b, j0, v, vo, nu);
            return;
        }
        System.arraycopy(v, vo, hm, 0, nu);
        CpuRows.mask(hm, 0, nu, prefix, b * l.H + j0, thresh, scale);
        CpuRows.put(hm, 0, hin, sh, nu);
        l.put(next, d, b, j0, hm, 0, nu);
    }

    // ------------------------------------------------------------------------------------------------------
    // LSTM: lstm_step_fwd without projection (kernels/common/lstm.h), every step

    /** lstm_seq_fwd: T B H D peep coupled training lengths xw whhT hw bih bhh peepw c h hin y gsave csave + dropout. */
    synchronized void lstm(CpuKernels.Args a, CpuBuffer whhT) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3);
        boolean peep = a.i(4) != 0, coupled = a.i(5) != 0, training = a.i(6) != 0;
        MemorySegment lengths = a.m(7), xw = a.m(8), c = a.m(14), h = a.m(15), hin = a.m(16), y = a.m(17),
                gsave = a.m(18), csave = a.m(19);
        int seedLo = a.i(20), seedHi = a.i(21), layer = a.i(22), thresh = a.i(23);
        float scale = a.f(24);
        int G = coupled ? 3 : 4, GH = G * H;
        Layer l = new Layer(T, B, H, D, G, H, lengths, whhT);
        float[] bih = heap(a.m(11), (long) D * GH), bhh = heap(a.m(12), (long) D * GH);
        float[] pw = peep ? heap(a.m(13), 3L * D * H) : null;
        initState(l, thresh != 0 ? hin : h);
        int bg = coupled ? 1 : 2, bo = coupled ? 2 : 3;
        ChunkStep step = (d, s, j0, nu, b0, b1, g, cur, next, th) -> {
            int nb = b1 - b0, bn = nb * nu, pb = d * 3 * H + j0;
            // Pre-activations in the per-step kernel's order: (hw + xw) + b_ih + b_hh.
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b];
                if (s >= len) continue;
                long xo = tbd(d == 0 ? s : len - 1 - s, b, d, B, D, GH, j0);
                CpuRows.addFromBlocks(g, (b - b0) * nu, bn, xw, xo, H, G, nu);
            }
            for (int q = 0; q < G; q++) CpuRows.addRows(g, q * bn, nb, nu, bih, d * GH + q * H + j0);
            for (int q = 0; q < G; q++) CpuRows.addRows(g, q * bn, nb, nu, bhh, d * GH + q * H + j0);
            float[] cp = buf(th, 1, bn), cn = buf(th, 2, bn), m = buf(th, 3, bn), hm = buf(th, 4, nu);
            for (int b = b0; b < b1; b++) CpuRows.get(c, dbw(d, b, B, H, j0), cp, (b - b0) * nu, nu);
            if (peep) {
                for (int b = b0; b < b1; b++) {
                    CpuRows.fma(g, (b - b0) * nu, pw, pb, cp, (b - b0) * nu, nu);
                    if (!coupled) CpuRows.fma(g, bn + (b - b0) * nu, pw, pb + H, cp, (b - b0) * nu, nu);
                }
            }
            CpuRows.sigmoid(g, 0, coupled ? bn : 2 * bn);
            CpuRows.tanh(g, bg * bn, bn);
            CpuRows.lstmCell(g, 0, bn, bg * bn, coupled, cp, cn, bn);
            if (peep) for (int b = b0; b < b1; b++) CpuRows.fma(g, bo * bn + (b - b0) * nu, pw, pb + 2 * H, cn, (b - b0) * nu, nu);
            CpuRows.sigmoid(g, bo * bn, bn);
            CpuRows.tanh(cn, 0, m, 0, bn);
            CpuRows.mul(m, 0, g, bo * bn, bn);
            int prefix = thresh != 0 ? prefix(seedLo, seedHi, layer, d) : 0;
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) {
                    zero(y, tbd(s, b, d, B, D, H, j0), nu);
                    if (training) {
                        for (int q = 0; q < G; q++) zero(gsave, tbd(s, b, d, B, D, GH, q * H + j0), nu);
                        zero(csave, tbd(s, b, d, B, D, H, j0), nu);
                    }
                    l.carry(cur, next, d, b, j0, nu);
                    continue;
                }
                int t = d == 0 ? s : len - 1 - s;
                long sc = dbw(d, b, B, H, j0);
                CpuRows.put(cn, r, c, sc, nu);
                if (training) {
                    long go = tbd(t, b, d, B, D, GH, j0);
                    CpuRows.putBlocks(g, r, bn, gsave, go, H, G, nu);
                    CpuRows.put(cn, r, csave, tbd(t, b, d, B, D, H, j0), nu);
                }
                CpuRows.put(m, r, h, sc, nu);
                CpuRows.put(m, r, y, tbd(t, b, d, B, D, H, j0), nu);
                emitState(l, next, d, b, j0, nu, m, r, hm, hin, sc, prefix, thresh, scale);
            }
        };
        forward(l, step, shareable(pool, a));
    }

    // ------------------------------------------------------------------------------------------------------
    // GRU, reset after the product: gru_step_fwd (kernels/common/gru.h), every step

    /** gru_seq_fwd: T B H D training lengths xw whhT hw bih bhh h hin y gsave + dropout. */
    synchronized void gru(CpuKernels.Args a, CpuBuffer whhT) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3);
        boolean training = a.i(4) != 0;
        MemorySegment lengths = a.m(5), xw = a.m(6), h = a.m(11), hin = a.m(12), y = a.m(13), gsave = a.m(14);
        int seedLo = a.i(15), seedHi = a.i(16), layer = a.i(17), thresh = a.i(18);
        float scale = a.f(19);
        int GH = 3 * H;
        Layer l = new Layer(T, B, H, D, 3, H, lengths, whhT);
        float[] bih = heap(a.m(9), (long) D * GH), bhh = heap(a.m(10), (long) D * GH);
        initState(l, thresh != 0 ? hin : h);
        ChunkStep step = (d, s, j0, nu, b0, b1, g, cur, next, th) -> {
            int nb = b1 - b0, bn = nb * nu;
            float[] pre = buf(th, 1, 3 * bn), hp = buf(th, 2, bn), hm = buf(th, 3, nu);
            // hh = hw + b_hh (in g); pre = xw + b_ih; r and z take both, n takes r * hh_n.
            for (int q = 0; q < 3; q++) CpuRows.addRows(g, q * bn, nb, nu, bhh, d * GH + q * H + j0);
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b];
                if (s >= len) continue;
                long xo = tbd(d == 0 ? s : len - 1 - s, b, d, B, D, GH, j0);
                CpuRows.getBlocks(xw, xo, H, pre, (b - b0) * nu, bn, 3, nu);
            }
            for (int q = 0; q < 3; q++) CpuRows.addRows(pre, q * bn, nb, nu, bih, d * GH + q * H + j0);
            CpuRows.add(pre, 0, g, 0, 2 * bn);
            CpuRows.sigmoid(pre, 0, 2 * bn);
            CpuRows.fma(pre, 2 * bn, pre, 0, g, 2 * bn, bn);
            CpuRows.tanh(pre, 2 * bn, bn);
            for (int b = b0; b < b1; b++) CpuRows.get(h, dbw(d, b, B, H, j0), hp, (b - b0) * nu, nu);
            CpuRows.gruUpdate(pre, bn, 2 * bn, hp, bn);
            int prefix = thresh != 0 ? prefix(seedLo, seedHi, layer, d) : 0;
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) {
                    zero(y, tbd(s, b, d, B, D, H, j0), nu);
                    if (training) for (int q = 0; q < 4; q++) zero(gsave, tbd(s, b, d, B, D, 4 * H, q * H + j0), nu);
                    l.carry(cur, next, d, b, j0, nu);
                    continue;
                }
                int t = d == 0 ? s : len - 1 - s;
                long sh = dbw(d, b, B, H, j0);
                CpuRows.put(hp, r, h, sh, nu);
                CpuRows.put(hp, r, y, tbd(t, b, d, B, D, H, j0), nu);
                if (training) {
                    long so = tbd(t, b, d, B, D, 4 * H, j0);
                    CpuRows.putBlocks(pre, r, bn, gsave, so, H, 3, nu);
                    CpuRows.put(g, 2 * bn + r, gsave, so + 3L * H, nu);
                }
                emitState(l, next, d, b, j0, nu, hp, r, hm, hin, sh, prefix, thresh, scale);
            }
        };
        forward(l, step, shareable(pool, a));
    }

    // ------------------------------------------------------------------------------------------------------
    // Plain RNN: rnn_step_fwd (kernels/common/rnn.h), every step

    /** rnn_seq_fwd: T B H D act lengths xw whhT hw bih bhh h y. */
    synchronized void rnn(CpuKernels.Args a, CpuBuffer whhT) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3);
        boolean relu = a.i(4) != 0;
        MemorySegment lengths = a.m(5), xw = a.m(6), h = a.m(11), y = a.m(12);
        Layer l = new Layer(T, B, H, D, 1, H, lengths, whhT);
        // b_ih + b_hh once per launch: the cell is one activation, so every pass over the row counts.
        float[] bias = heap(a.m(9), (long) D * H), bhh = heap(a.m(10), (long) D * H);
        for (int i = 0; i < bias.length; i++) bias[i] += bhh[i];
        initState(l, h);
        ChunkStep step = (d, s, j0, nu, b0, b1, g, cur, next, th) -> {
            int nb = b1 - b0, bn = nb * nu;
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b];
                if (s < len) CpuRows.addFrom(g, (b - b0) * nu, xw, tbd(d == 0 ? s : len - 1 - s, b, d, B, D, H, j0), nu);
            }
            CpuRows.addRows(g, 0, nb, nu, bias, d * H + j0);
            if (relu) CpuRows.relu(g, 0, bn);
            else CpuRows.tanh(g, 0, bn);
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) {
                    zero(y, tbd(s, b, d, B, D, H, j0), nu);
                    l.carry(cur, next, d, b, j0, nu);
                    continue;
                }
                // h_n is the state after the row's last step; nothing reads h before the launch ends.
                if (s == len - 1) CpuRows.put(g, r, h, dbw(d, b, B, H, j0), nu);
                CpuRows.put(g, r, y, tbd(d == 0 ? s : len - 1 - s, b, d, B, D, H, j0), nu);
                l.put(next, d, b, j0, g, r, nu);
            }
        };
        forward(l, step, shareable(pool, a));
    }

    // ------------------------------------------------------------------------------------------------------
    // Backward: for s = T-1 .. 0 the per-step backward kernel, then dhrec = dgs W_hh (Kernels.SEQUENCE_BWD)

    /**
     * A cell's backward step for one chunk (direction d, units j0..j0+nu, rows b0..b1): {@code dr} holds this
     * step's recurrent gradient dhrec for the chunk's units and rows ({@code dr[(b-b0)*nu + u]}); the step writes its gate gradients
     * (dgs) into {@code next}, block q at columns {@code q*H + j0 ..}.
     */
    @FunctionalInterface
    private interface BackStep {
        void run(int d, int s, int j0, int nu, int b0, int b1, float[] dr, float[] next, int thread);
    }

    /**
     * Backward phases i = 0..T: the chunk's units of dhrec for step s = T-1-i, the product of step s+1's gate
     * gradients (all of them: hence the barrier) with the chunk's columns of W_hh (none at phase 0: nothing has
     * flowed back yet), then the cell's backward step s. The last phase only stores dhrec, as the per-step loop
     * leaves it.
     */
    private void backward(Layer l, BackStep step, MemorySegment dhrec, boolean shareable) {
        l.clearState();
        run(l, l.T + 1, (i, c, cur, next, th) -> {
            int d = l.dir(c), j0 = l.j0(c), nu = l.nu(c), s = l.T - 1 - i, b0 = l.b0(c), b1 = l.b1(c);
            float[] dr = buf(th, 7, (b1 - b0) * nu);
            if (i == 0) java.util.Arrays.fill(dr, 0, (b1 - b0) * nu, 0f);
            else l.product(cur, d, j0, nu, b0, b1, dr, buf(th, 6, MR * NR));
            if (s >= 0) {
                step.run(d, s, j0, nu, b0, b1, dr, next, th);
            } else {
                for (int b = b0; b < b1; b++) CpuRows.put(dr, (b - b0) * nu, dhrec, dbw(d, b, l.B, l.H, j0), nu);
            }
        }, shareable);
    }

    /**
     * dh[r..r+nu) for a row: dh_N at the sequence's last step, else the recurrent gradient {@code dr} through the
     * recurrent dropout mask (the forward multiplied h by it before W_hh).
     */
    private static void incomingGrad(boolean last, MemorySegment dhN, long sh, float[] dr, float[] dh, int r, int nu,
                                     int prefix, int index0, int thresh, float scale) {
        if (last) {
            CpuRows.get(dhN, sh, dh, r, nu);
        } else {
            System.arraycopy(dr, r, dh, r, nu);
            CpuRows.mask(dh, r, nu, prefix, index0, thresh, scale);
        }
    }

    /** lstm_seq_bwd: T B H D peep coupled lengths dy dhN dhrec dcN dc gsave csave c0 peepw whh dgs dgall + dropout. */
    synchronized void lstmBackward(CpuKernels.Args a, CpuBuffer whh) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3);
        boolean peep = a.i(4) != 0, coupled = a.i(5) != 0;
        MemorySegment lengths = a.m(6), dy = a.m(7), dhN = a.m(8), dhrec = a.m(9), dcN = a.m(10), dc = a.m(11),
                gsave = a.m(12), csave = a.m(13), c0 = a.m(14), dgall = a.m(18);
        int seedLo = a.i(19), seedHi = a.i(20), layer = a.i(21), thresh = a.i(22);
        float scale = a.f(23);
        int G = coupled ? 3 : 4, GH = G * H;
        Layer l = new Layer(T, B, H, D, 1, GH, lengths, whh);
        float[] pw = peep ? heap(a.m(15), 3L * D * H) : null;
        BackStep step = (d, s, j0, nu, b0, b1, dr, next, th) -> {
            int nb = b1 - b0, bn = nb * nu;
            float[] dh = buf(th, 0, bn), dcin = buf(th, 1, bn), cp = buf(th, 2, bn), tc = buf(th, 3, bn);
            float[] gt = buf(th, 4, G * bn), dg = buf(th, 5, G * bn), dcPrev = buf(th, 8, bn);
            float[] pwx = peep ? buf(th, 9, 3 * bn) : null;
            int prefix = thresh != 0 ? prefix(seedLo, seedHi, layer, d) : 0;
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) continue;
                int t = d == 0 ? s : len - 1 - s;
                boolean last = s == len - 1, first = d == 0 ? t == 0 : t == len - 1;
                long sh = dbw(d, b, B, H, j0);
                incomingGrad(last, dhN, sh, dr, dh, r, nu, prefix, b * H + j0, thresh, scale);
                CpuRows.addFrom(dh, r, dy, tbd(t, b, d, B, D, H, j0), nu);
                CpuRows.get(last ? dcN : dc, sh, dcin, r, nu);
                CpuRows.get(first ? c0 : csave, first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, j0), cp, r, nu);
                CpuRows.get(csave, tbd(t, b, d, B, D, H, j0), tc, r, nu);
                long go = tbd(t, b, d, B, D, GH, j0);
                CpuRows.getBlocks(gsave, go, H, gt, r, bn, G, nu);
                if (peep) for (int q = 0; q < 3; q++) System.arraycopy(pw, d * 3 * H + q * H + j0, pwx, q * bn + r, nu);
            }
            CpuRows.tanh(tc, 0, bn);
            CpuRows.lstmBackward(dh, dcin, cp, tc, gt, bn, coupled, pwx, dg, dcPrev, bn);
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) {
                    for (int q = 0; q < G; q++) {
                        zero(dgall, tbd(s, b, d, B, D, GH, q * H + j0), nu);
                        l.clear(next, d, b, q * H + j0, nu);
                    }
                    continue;
                }
                int t = d == 0 ? s : len - 1 - s;
                CpuRows.put(dcPrev, r, dc, dbw(d, b, B, H, j0), nu);
                long go = tbd(t, b, d, B, D, GH, j0);
                CpuRows.putBlocks(dg, r, bn, dgall, go, H, G, nu);
                for (int q = 0; q < G; q++) l.put(next, d, b, q * H + j0, dg, q * bn + r, nu);
            }
        };
        backward(l, step, dhrec, shareable(pool, a));
    }

    /** gru_seq_bwd: T B H D lengths dy dhN dhrec ddir gsave y h0 whh dgs dgall dgallh + dropout. */
    synchronized void gruBackward(CpuKernels.Args a, CpuBuffer whh) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3);
        MemorySegment lengths = a.m(4), dy = a.m(5), dhN = a.m(6), dhrec = a.m(7), ddir = a.m(8), gsave = a.m(9),
                y = a.m(10), h0 = a.m(11), dgall = a.m(14), dgallh = a.m(15);
        int seedLo = a.i(16), seedHi = a.i(17), layer = a.i(18), thresh = a.i(19);
        float scale = a.f(20);
        int GH = 3 * H;
        Layer l = new Layer(T, B, H, D, 1, GH, lengths, whh);
        BackStep step = (d, s, j0, nu, b0, b1, dr, next, th) -> {
            int nb = b1 - b0, bn = nb * nu;
            float[] dh = buf(th, 0, bn), g4 = buf(th, 1, 4 * bn), hp = buf(th, 2, bn), dgi = buf(th, 3, 3 * bn);
            float[] dgh = buf(th, 4, 3 * bn), dd = buf(th, 5, bn);
            int prefix = thresh != 0 ? prefix(seedLo, seedHi, layer, d) : 0;
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) continue;
                int t = d == 0 ? s : len - 1 - s;
                boolean last = s == len - 1, first = d == 0 ? t == 0 : t == len - 1;
                long sh = dbw(d, b, B, H, j0);
                incomingGrad(last, dhN, sh, dr, dh, r, nu, prefix, b * H + j0, thresh, scale);
                if (!last) CpuRows.addFrom(dh, r, ddir, sh, nu);
                CpuRows.addFrom(dh, r, dy, tbd(t, b, d, B, D, H, j0), nu);
                long go = tbd(t, b, d, B, D, 4 * H, j0);
                CpuRows.getBlocks(gsave, go, H, g4, r, bn, 4, nu);
                CpuRows.get(first ? h0 : y, first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, j0), hp, r, nu);
            }
            CpuRows.gruBackward(dh, g4, hp, bn, dgi, dgh, dd, bn);
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) {
                    for (int q = 0; q < 3; q++) {
                        long ao = tbd(s, b, d, B, D, GH, q * H + j0);
                        zero(dgall, ao, nu);
                        zero(dgallh, ao, nu);
                        l.clear(next, d, b, q * H + j0, nu);
                    }
                    continue;
                }
                int t = d == 0 ? s : len - 1 - s;
                CpuRows.put(dd, r, ddir, dbw(d, b, B, H, j0), nu);
                long ao = tbd(t, b, d, B, D, GH, j0);
                CpuRows.putBlocks(dgi, r, bn, dgall, ao, H, 3, nu);
                CpuRows.putBlocks(dgh, r, bn, dgallh, ao, H, 3, nu);
                for (int q = 0; q < 3; q++) l.put(next, d, b, q * H + j0, dgh, q * bn + r, nu);
            }
        };
        backward(l, step, dhrec, shareable(pool, a));
    }

    /** rnn_seq_bwd: T B H D act lengths dy dhN dhrec y whh dgs dgall. */
    synchronized void rnnBackward(CpuKernels.Args a, CpuBuffer whh) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3);
        boolean relu = a.i(4) != 0;
        MemorySegment lengths = a.m(5), dy = a.m(6), dhN = a.m(7), dhrec = a.m(8), y = a.m(9), dgall = a.m(12);
        Layer l = new Layer(T, B, H, D, 1, H, lengths, whh);
        BackStep step = (d, s, j0, nu, b0, b1, dr, next, th) -> {
            int nb = b1 - b0, bn = nb * nu;
            float[] dh = buf(th, 0, bn), yv = buf(th, 1, bn);
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) continue;
                long to = tbd(d == 0 ? s : len - 1 - s, b, d, B, D, H, j0);
                if (s == len - 1) CpuRows.get(dhN, dbw(d, b, B, H, j0), dh, r, nu);
                else System.arraycopy(dr, r, dh, r, nu);
                CpuRows.addFrom(dh, r, dy, to, nu);
                CpuRows.get(y, to, yv, r, nu);
            }
            CpuRows.rnnBackward(dh, yv, relu, bn);
            for (int b = b0; b < b1; b++) {
                int len = l.lens[b], r = (b - b0) * nu;
                if (s >= len) {
                    zero(dgall, tbd(s, b, d, B, D, H, j0), nu);
                    l.clear(next, d, b, j0, nu);
                    continue;
                }
                CpuRows.put(dh, r, dgall, tbd(d == 0 ? s : len - 1 - s, b, d, B, D, H, j0), nu);
                l.put(next, d, b, j0, dh, r, nu);
            }
        };
        backward(l, step, dhrec, shareable(pool, a));
    }
}
