package dev.recur.backend.cpu;

import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionEngine;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.function.Supplier;

/**
 * Attention on the {@code cpu} backend: forward and backward of every score fused per batch row, from the host
 * tensors to the host tensors. Tensors beyond int indexing go to a fallback engine made on first use, which the
 * caller supplies (the model API gives the shared {@code dev.recur.schedule.AttentionSchedule} on the same backend,
 * holding the parameters as device buffers like every device engine): this package does not know the schedule.
 *
 * <p>Why fused: the schedule's forward is four device operations with float64/float32 conversions and copies at
 * both ends; at a seq2seq size (U=50, B=32, T=100, H=256) the conversions, copies, pool hand-offs of each
 * operation and the dot-product GEMM path cost several times the 164 MFLOP of products. Here one pool task per
 * batch row {@code b} converts {@code dec[:,b,:]}, {@code enc[:,b,:]} (and {@code dcontext[:,b,:]}) into float32
 * scratch that stays in the core's cache (about 300 KB at that size), runs every product of the row there with
 * broadcast-FMA register blocks (enc is stored transposed once, so no product needs dot products along K), and
 * writes the float64 results directly. Masked positions weigh exactly 0, so they are left out of every product
 * over t. Weight gradients sum over batch rows: the rows leave their parts in shared arrays and the sums follow
 * in blocks of the gradient's rows, so results do not depend on which thread ran which row. The math is the
 * schedule's (float32, softmax with the maximum subtracted, exactly 0 at masked positions, an all-0 row when
 * nothing is valid, the kernels' tanh for additive scores); sums run in another order, so results agree with
 * the schedule's to float32 rounding, not bit for bit.
 *
 * <p>Threads: made by the model API ({@code dev.recur.nn.Engines}), it runs on the backend's own pool (tests may give
 * it a pool of its own); calls below {@link #PARALLEL_MIN_FMAS} run on the caller alone. Not
 * thread-safe: {@code dev.recur.nn.attention.Attention} serialises calls (the backend's lock), and the
 * per-thread scratch is shared between calls.
 */
public final class CpuAttention implements AttentionEngine {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private final AttentionConfig cfg;
    /**
     * The fallback (the shared schedule), for the shapes whose padded scratch would pass 2^31 elements: made, and
     * given a copy of the weights last set, only when a call needs it (until then it would hold a second copy of
     * every weight).
     */
    private final Supplier<? extends AttentionEngine> makeFallback;
    private AttentionEngine schedule;
    private AttentionWeights weights;
    /** Scratch elements from which a call goes to the schedule: 2^31 - 1, lowered by tests to reach that path. */
    private final long fallbackAbove;
    private final CpuPool pool;
    private final boolean ownsPool;
    private final long parallelMinFmas;
    private final int hd, he, hep;
    /** W_a [Hd, Hep] and W_a^T [He, Hdp] for the general score (rows padded with zeros to whole vectors). */
    private float[] wa, waT;
    /** Additive: W1 [A, He] and padded [A, Hep], W2^T [Hd, Ap], W2 [A, Hdp], v [A]. */
    private float[] w1, w1p, w2T, w2p, v;
    private final int hdp, na, ap;
    private final Scratch[] scratch;
    private boolean closed;

    /**
     * Tests: runs on {@code backend} with a pool of its own (the backend's thread count, closed with this engine),
     * going to the pool from {@code parallelMinFmas} multiply-adds (0: always).
     */
    CpuAttention(CpuBackend backend, AttentionConfig config, Supplier<? extends AttentionEngine> fallback,
                 long parallelMinFmas) {
        this(backend, config, fallback, parallelMinFmas, Integer.MAX_VALUE);
    }

    /** Tests: as above, sending calls whose padded scratch passes {@code fallbackAbove} elements to the fallback. */
    CpuAttention(CpuBackend backend, AttentionConfig config, Supplier<? extends AttentionEngine> fallback,
                 long parallelMinFmas, long fallbackAbove) {
        this(backend, new CpuPool(checkedThreads(backend)), config, fallback, true, parallelMinFmas, fallbackAbove);
    }

    /**
     * Runs on {@code backend}, spreading batch rows over the backend's pool; shapes past int indexing go to the
     * engine {@code fallback} makes (on first use; closed with this engine).
     */
    public CpuAttention(CpuBackend backend, AttentionConfig config, Supplier<? extends AttentionEngine> fallback) {
        this(backend, openPool(backend), config, fallback, false, PARALLEL_MIN_FMAS, Integer.MAX_VALUE);
    }

    private static CpuPool openPool(CpuBackend backend) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        return backend.pool();
    }

    private static int checkedThreads(CpuBackend backend) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        return backend.threads();
    }

    private CpuAttention(CpuBackend backend, CpuPool pool, AttentionConfig config,
                         Supplier<? extends AttentionEngine> fallback, boolean ownsPool, long parallelMinFmas,
                         long fallbackAbove) {
        if (pool == null) throw new IllegalArgumentException("pool: must not be null");
        if (backend == null || config == null || fallback == null) {
            if (ownsPool) pool.close();
            throw new IllegalArgumentException((backend == null ? "backend" : config == null ? "config" : "fallback")
                    + ": must not be null");
        }
        this.cfg = config;
        this.makeFallback = fallback;
        this.fallbackAbove = fallbackAbove;
        this.pool = pool;
        this.ownsPool = ownsPool;
        this.parallelMinFmas = parallelMinFmas;
        this.hd = config.decoderSize();
        this.he = config.encoderSize();
        this.hep = roundUp(he);
        this.hdp = roundUp(hd);
        this.na = config.attentionSize();
        this.ap = roundUp(na);
        this.scratch = new Scratch[pool.threads()];
        for (int i = 0; i < scratch.length; i++) scratch[i] = new Scratch();
    }

    private static int roundUp(int n) {
        return (n + L - 1) / L * L;
    }

    @Override
    public void setWeights(AttentionWeights w) {
        ensureOpen();
        weights = w.copy();
        if (schedule != null) schedule.setWeights(weights);
        if (cfg.score() == AttentionScore.GENERAL) {
            double[] d = w.get("W_a").data();
            float[] f = new float[hd * hep], ft = new float[he * hdp];
            for (int i = 0; i < hd; i++) {
                for (int j = 0; j < he; j++) {
                    f[i * hep + j] = (float) d[i * he + j];
                    ft[j * hdp + i] = (float) d[i * he + j];
                }
            }
            wa = f;
            waT = ft;
        } else if (cfg.score() == AttentionScore.ADDITIVE) {
            double[] d1 = w.get("W1").data(), d2 = w.get("W2").data(), dv = w.get("v").data();
            float[] f1 = new float[na * he], f1p = new float[na * hep], f2 = new float[hd * ap], f2p = new float[na * hdp];
            float[] fv = new float[na];
            for (int a = 0; a < na; a++) {
                for (int j = 0; j < he; j++) f1p[a * hep + j] = f1[a * he + j] = (float) d1[a * he + j];
                for (int j = 0; j < hd; j++) f2p[a * hdp + j] = f2[j * ap + a] = (float) d2[a * hd + j];
                fv[a] = (float) dv[a];
            }
            w1 = f1;
            w1p = f1p;
            w2T = f2;
            w2p = f2p;
            v = fv;
        }
    }

    @Override
    public AttentionOutput forward(Tensor dec, Tensor enc, int[] mask) {
        ensureOpen();
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0);
        long biggest = Math.max((long) u * b * Math.max(t, hep), (long) t * b * hep);
        if (biggest > fallbackAbove) return fallback().forward(dec, enc, mask);
        double[] scores = new double[u * b * t], weights = new double[u * b * t], context = new double[u * b * he];
        float alpha = alpha();
        double[] dd = dec.data(), ed = enc.data();
        run(b, work(u, b, t), (row, thread) -> forwardRow(scratch[thread], row, u, b, t, alpha, dd, ed, mask, scores, weights, context));
        return new AttentionOutput(Tensor.of(scores, u, b, t), Tensor.of(weights, u, b, t), Tensor.of(context, u, b, he));
    }

    @Override
    public AttentionGradients backward(Tensor dec, Tensor enc, int[] mask, Tensor dcontext) {
        ensureOpen();
        int u = dec.dim(0), b = dec.dim(1), t = enc.dim(0);
        long widest = Math.max(Math.max(t, ap), Math.max(hep, hdp));
        long biggest = Math.max((long) u * b * widest, (long) t * b * widest);
        if (biggest > fallbackAbove) return fallback().backward(dec, enc, mask, dcontext);
        if (cfg.score() == AttentionScore.ADDITIVE) return additiveBackward(u, b, t, dec.data(), enc.data(), mask, dcontext.data());
        double[] dscores = new double[u * b * t], ddec = new double[u * b * hd], denc = new double[t * b * he];
        float alpha = alpha();
        double[] dd = dec.data(), ed = enc.data(), dc = dcontext.data();
        boolean general = cfg.score() == AttentionScore.GENERAL;
        // general: dq of every row [U*B, Hep] (row u*B + b), for dW_a = dec^T dq after the rows
        float[] dqAll = general ? new float[u * b * hep] : null;
        run(b, work(u, b, t), (row, thread) -> backwardRow(scratch[thread], row, u, b, t, alpha, dd, ed, mask, dc, dscores, ddec,
                denc, dqAll));
        java.util.Map<String, Tensor> dweights = java.util.Map.of();
        if (general) dweights = java.util.Map.of("W_a", Tensor.of(weightGradient(dd, dqAll, u * b), hd, he));
        return new AttentionGradients(Tensor.of(dscores, u, b, t), Tensor.of(ddec, u, b, hd), Tensor.of(denc, t, b, he),
                dweights);
    }

    /**
     * Additive backward, per batch row: the recomputed W and dS as for the other scores, then one pass over every
     * (u, a, t) recomputing {@code th = tanh(ekt[a,t] + dk[u,a])} and accumulating, with {@code gp = dS (1 - th^2)},
     * {@code ddk[u,a] = v[a] sum_t gp}, {@code dek[t,a] = v[a] sum_u gp} and the row's part of
     * {@code dv[a] = sum_{u,t} dS th}; {@code denc = W^T dC + dek W1}, {@code ddec = ddk W2}. The weight gradients sum
     * over batch rows, so the rows leave dek, ddk (transposed) and enc, dec (as floats) in shared arrays and
     * {@code dW1 = dek^T enc}, {@code dW2 = ddk^T dec} follow in blocks of their rows, and dv sums the rows' parts in
     * order: nothing depends on which thread ran which row.
     */
    private AttentionGradients additiveBackward(int u, int b, int t, double[] dec, double[] enc, int[] mask, double[] dc) {
        double[] dscores = new double[u * b * t], ddec = new double[u * b * hd], denc = new double[t * b * he];
        Shared sh = new Shared(new float[na * t * b], new float[t * b * hep], new float[na * u * b], new float[u * b * hdp],
                new float[b * na]);
        run(b, work(u, b, t), (row, thread) -> additiveBackwardRow(scratch[thread], row, u, b, t, dec, enc, mask, dc, dscores, ddec,
                denc, sh));
        java.util.Map<String, Tensor> dweights = new java.util.LinkedHashMap<>();
        dweights.put("W1", Tensor.of(rowBlockProduct(na, t * b, rowsOf(sh.dekT, t * b), sh.encAll, hep, he), na, he));
        dweights.put("W2", Tensor.of(rowBlockProduct(na, u * b, rowsOf(sh.ddkT, u * b), sh.decAll, hdp, hd), na, hd));
        double[] dv = new double[na];
        for (int a = 0; a < na; a++) {
            float sum = 0f;
            for (int row = 0; row < b; row++) sum += sh.dvPart[row * na + a];
            dv[a] = sum;
        }
        dweights.put("v", Tensor.of(dv, na));
        return new AttentionGradients(Tensor.of(dscores, u, b, t), Tensor.of(ddec, u, b, hd), Tensor.of(denc, t, b, he),
                dweights);
    }

    /**
     * Arrays the additive backward's batch rows fill for the weight gradients: {@code dekT [A, T*B]} and
     * {@code ddkT [A, U*B]} (column t*B+b, u*B+b), {@code encAll [T*B, Hep]}, {@code decAll [U*B, Hdp]}, and
     * {@code dvPart [B, A]}.
     */
    private record Shared(float[] dekT, float[] encAll, float[] ddkT, float[] decAll, float[] dvPart) {}

    /** Writes rows {@code i0 .. i0+n} of a product's left operand into {@code dst} ({@code n} rows of {@code r}). */
    @FunctionalInterface
    private interface RowsOfA {
        void fill(int i0, int n, float[] dst);
    }

    /** Rows of a row-major matrix with {@code r} columns already in a float array. */
    private static RowsOfA rowsOf(float[] m, int r) {
        return (i0, n, dst) -> System.arraycopy(m, i0 * r, dst, 0, n * r);
    }

    /**
     * {@code out [rows, cols] = A [rows, r] · m [r, ld]} (first {@code cols} columns), in blocks of {@link #WA_ROWS}
     * rows of A over the pool; each task sums over all r, so the result does not depend on threads.
     */
    private double[] rowBlockProduct(int rows, int r, RowsOfA a, float[] m, int ld, int cols) {
        double[] out = new double[rows * cols];
        int tasks = (rows + WA_ROWS - 1) / WA_ROWS;
        run(tasks, (long) rows * ld * r, (task, thread) -> {
            int i0 = task * WA_ROWS, n = Math.min(WA_ROWS, rows - i0);
            Scratch sc = scratch[thread];
            sc.aRows = Scratch.grow(sc.aRows, n * r);
            sc.product = Scratch.grow(sc.product, n * ld);
            float[] block = sc.aRows, part = sc.product;
            a.fill(i0, n, block);
            matmul(n, ld, r, block, 0, r, m, 0, ld, part, 0, ld);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < cols; j++) out[(i0 + i) * cols + j] = part[i * ld + j];
            }
        });
        return out;
    }

    private void additiveBackwardRow(Scratch sc, int b, int U, int B, int T, double[] dec, double[] enc, int[] mask,
                                     double[] dcontext, double[] dscores, double[] ddec, double[] denc, Shared sh) {
        prepareRow(sc, b, U, B, T, 1f, dec, enc, mask);
        int tp = sc.tp, nValid = sc.nValid, R1 = T * B, R2 = U * B;
        float[] x = sc.x, encT = sc.encT;
        // enc and dec rows as floats for dW1, dW2 (every row: they are multiplied by dek, ddk, 0 where masked)
        for (int t = 0; t < T; t++) {
            int dst = (t * B + b) * hep;
            for (int j = 0; j < he; j++) sh.encAll[dst + j] = encT[j * tp + t];
        }
        for (int uu = 0; uu < U; uu++) System.arraycopy(x, uu * hd, sh.decAll, (uu * B + b) * hdp, hd);
        if (nValid == 0) return; // every gradient of this row is 0
        float[] s = sc.s, stack = sc.stack, valid = sc.valid;
        int[] idx = sc.idx;
        sc.dw = Scratch.grow(sc.dw, U * tp);
        sc.wide = Scratch.grow(sc.wide, nValid * U);
        sc.rows = Scratch.grow(sc.rows, 2 * nValid * hep);
        sc.stack = stack = Scratch.grow(stack, U * hep);
        float[] dw = sc.dw, wide = sc.wide, rows = sc.rows;
        for (int uu = 0; uu < U; uu++) {
            int src = (uu * B + b) * he, dst = uu * hep;
            for (int j = 0; j < he; j++) stack[dst + j] = (float) dcontext[src + j];
            for (int j = he; j < hep; j++) stack[dst + j] = 0f;
        }
        matmul(U, tp, he, stack, 0, hep, encT, 0, tp, dw, 0, tp);
        for (int uu = 0; uu < U; uu++) {
            int row = uu * tp, out = (uu * B + b) * T;
            softmaxGradRow(s, dw, row, tp, valid);
            for (int t = 0; t < T; t++) dscores[out + t] = dw[row + t];
            for (int q = 0; q < nValid; q++) wide[q * U + uu] = s[row + idx[q]];
        }
        // th pass: ddk [U, Ap], dek^T [A, Tp], dv part
        sc.ddk = Scratch.grow(sc.ddk, U * ap);
        sc.dekT = Scratch.grow(sc.dekT, na * tp);
        sc.acc = Scratch.grow(sc.acc, 2 * na * L);
        float[] ddk = sc.ddk, dekT = sc.dekT, acc = sc.acc, ekt = sc.ekt, dk = sc.dk;
        java.util.Arrays.fill(dekT, 0, na * tp, 0f);
        java.util.Arrays.fill(acc, 0, 2 * na * L, 0f);
        for (int uu = 0; uu < U; uu++) {
            additiveGradRow(na, tp, ekt, dk, uu * ap, dw, uu * tp, dekT, acc);
            for (int a = 0; a < na; a++) {
                float g = CpuMath.sumLanes(FloatVector.fromArray(S, acc, a * L));
                ddk[uu * ap + a] = v[a] * g;
                sh.ddkT[a * R2 + uu * B + b] = v[a] * g;
                FloatVector.zero(S).intoArray(acc, a * L);
            }
            for (int a = na; a < ap; a++) ddk[uu * ap + a] = 0f;
        }
        for (int a = 0; a < na; a++) {
            sh.dvPart[b * na + a] = CpuMath.sumLanes(FloatVector.fromArray(S, acc, (na + a) * L));
        }
        // dek of the valid positions [nValid, A] (the others are 0), also into dekT for dW1
        sc.w = Scratch.grow(sc.w, nValid * na);
        float[] dekc = sc.w;
        for (int a = 0; a < na; a++) {
            float va = v[a];
            for (int q = 0; q < nValid; q++) {
                int t = idx[q];
                float g = va * dekT[a * tp + t];
                dekc[q * na + a] = g;
                sh.dekT[a * R1 + t * B + b] = g;
            }
        }
        // denc (valid rows) = W^T dC + dek W1
        matmul(nValid, hep, U, wide, 0, U, stack, 0, hep, rows, 0, hep);
        matmul(nValid, hep, na, dekc, 0, na, w1p, 0, hep, rows, nValid * hep, hep);
        for (int q = 0; q < nValid; q++) {
            int src = q * hep, src2 = (nValid + q) * hep, out = (idx[q] * B + b) * he;
            for (int j = 0; j < he; j++) denc[out + j] = rows[src + j] + rows[src2 + j];
        }
        // ddec = ddk W2
        sc.dd = Scratch.grow(sc.dd, U * hdp);
        float[] dd = sc.dd;
        matmul(U, hdp, na, ddk, 0, ap, w2p, 0, hdp, dd, 0, hdp);
        for (int uu = 0; uu < U; uu++) {
            int src = uu * hdp, out = (uu * B + b) * hd;
            for (int j = 0; j < hd; j++) ddec[out + j] = dd[src + j];
        }
    }

    /**
     * One decoder step's tanh pass: for every a and vector of t, {@code gp = g (1 - th^2)} into {@code dekT[a, t]},
     * the lanes of {@code gp} into {@code acc[a]} (ddk) and of {@code g th} into {@code acc[A + a]} (dv). The only
     * call site of the vector tanh in this method, so C2 inlines it.
     */
    private static void additiveGradRow(int na, int tp, float[] ekt, float[] dk, int d, float[] ds, int dsRow,
                                        float[] dekT, float[] acc) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int t = 0; t < tp; t += L) {
            FloatVector g = FloatVector.fromArray(S, ds, dsRow + t);
            for (int a = 0; a < na; a++) {
                FloatVector th = CpuAttentionKernels.tanh(FloatVector.fromArray(S, ekt, a * tp + t).add(dk[d + a]));
                FloatVector gp = g.mul(th.neg().fma(th, one));
                FloatVector.fromArray(S, dekT, a * tp + t).add(gp).intoArray(dekT, a * tp + t);
                FloatVector.fromArray(S, acc, a * L).add(gp).intoArray(acc, a * L);
                g.fma(th, FloatVector.fromArray(S, acc, (na + a) * L)).intoArray(acc, (na + a) * L);
            }
        }
    }

    /**
     * Below this many multiply-adds a call runs on the calling thread alone: waking the pool's worker costs more
     * than it saves (a seq2seq decoder calls attention once per step with U = 1), and an idle worker spins for a
     * while, taking a core from the caller's next operation.
     */
    static final long PARALLEL_MIN_FMAS = 1L << 20;

    /** Multiply-adds of one call, roughly: the products over t and the widest projection. */
    private long work(int u, int b, int t) {
        long widest = Math.max(Math.max(hep, hdp), ap);
        return (long) u * b * widest * (2L * t + (cfg.score() == AttentionScore.ADDITIVE ? 2L * na : 0L) + widest);
    }

    private void run(int tasks, long work, CpuPool.Task body) {
        if (work < parallelMinFmas || pool.threads() == 1) {
            for (int i = 0; i < tasks; i++) body.run(i, 0);
        } else {
            pool.run(tasks, body);
        }
    }

    /** Rows of a weight gradient per pool task ({@link #rowBlockProduct}). */
    private static final int WA_ROWS = 16;

    /** {@code dW_a [Hd, He] = dec^T [Hd, R] · dq [R, Hep]} over all {@code R = U*B} rows, in blocks of rows of dW_a. */
    private double[] weightGradient(double[] dec, float[] dq, int r) {
        return rowBlockProduct(hd, r, (i0, n, dst) -> {
            for (int row = 0; row < r; row++) {
                for (int i = 0; i < n; i++) dst[i * r + row] = (float) dec[row * hd + i0 + i];
            }
        }, dq, hep, he);
    }

    private float alpha() {
        return cfg.score() == AttentionScore.SCALED ? (float) (1.0 / Math.sqrt(he)) : 1f;
    }

    /** One batch row's scratch, reused across rows and calls (grown on demand). */
    private static final class Scratch {
        float[] encRows = new float[0], encT = new float[0], x = new float[0], stack = new float[0];
        float[] s = new float[0], w = new float[0], ctx = new float[0], valid = new float[0];
        float[] dw = new float[0], wide = new float[0], rows = new float[0], dd = new float[0];
        float[] aRows = new float[0], product = new float[0], ekt = new float[0], dk = new float[0];
        float[] ddk = new float[0], dekT = new float[0], acc = new float[0];
        int[] idx = new int[0];
        int tp, nValid;

        static float[] grow(float[] a, int n) {
            return a.length >= n ? a : new float[n];
        }
    }

    /**
     * The part of a batch row shared by forward and backward: the mask's valid positions ({@code idx}, {@code valid}),
     * enc[:,b,:] transposed ({@code encT [He, Tp]}, every position, padding 0) and its valid rows packed
     * ({@code encRows [nValid, Hep]}: the masked positions weigh exactly 0 in every product over t), the query
     * {@code X [U, Hep]} (dec, or dec W_a for general) in rows U..2U-1 of {@code stack}, and the scaled scores
     * {@code s [U, Tp]}.
     */
    private void prepareRow(Scratch sc, int b, int U, int B, int T, float alpha, double[] dec, double[] enc, int[] mask) {
        int tp = roundUp(T);
        sc.tp = tp;
        sc.encRows = Scratch.grow(sc.encRows, T * hep);
        sc.encT = Scratch.grow(sc.encT, he * tp);
        sc.stack = Scratch.grow(sc.stack, 2 * U * hep);
        sc.s = Scratch.grow(sc.s, U * tp);
        sc.valid = Scratch.grow(sc.valid, tp);
        if (sc.idx.length < T) sc.idx = new int[T];
        float[] encRows = sc.encRows, encT = sc.encT, stack = sc.stack, valid = sc.valid;
        int[] idx = sc.idx;

        int nValid = 0;
        for (int t = 0; t < tp; t++) {
            boolean ok = t < T && mask[b * T + t] != 0;
            valid[t] = ok ? 1f : 0f;
            if (ok) idx[nValid++] = t;
        }
        sc.nValid = nValid;
        for (int t = 0, r = 0; t < T; t++) {
            int src = (t * B + b) * he;
            for (int j = 0; j < he; j++) encT[j * tp + t] = (float) enc[src + j];
            if (valid[t] != 0f) {
                int dst = r++ * hep;
                for (int j = 0; j < he; j++) encRows[dst + j] = encT[j * tp + t];
                for (int j = he; j < hep; j++) encRows[dst + j] = 0f;
            }
        }
        for (int j = 0; j < he; j++) {
            for (int t = T; t < tp; t++) encT[j * tp + t] = 0f;
        }
        if (cfg.score() == AttentionScore.ADDITIVE) {
            additiveScores(sc, b, U, B, dec);
            return;
        }
        int xOff = U * hep;
        if (cfg.score() == AttentionScore.GENERAL) {
            sc.x = Scratch.grow(sc.x, U * hd);
            float[] x = sc.x;
            for (int uu = 0; uu < U; uu++) {
                int src = (uu * B + b) * hd, dst = uu * hd;
                for (int j = 0; j < hd; j++) x[dst + j] = (float) dec[src + j];
            }
            matmul(U, hep, hd, x, 0, hd, wa, 0, hep, stack, xOff, hep);
        } else {
            // dot and scaled: Hd == He
            for (int uu = 0; uu < U; uu++) {
                int src = (uu * B + b) * hd, dst = xOff + uu * hep;
                for (int j = 0; j < hd; j++) stack[dst + j] = (float) dec[src + j];
                for (int j = hd; j < hep; j++) stack[dst + j] = 0f;
            }
        }
        // s [U, Tp] = X [U, He] · enc^T
        float[] s = sc.s;
        matmul(U, tp, he, stack, xOff, hep, encT, 0, tp, s, 0, tp);
        if (alpha != 1f) {
            for (int i = 0; i < U * tp; i += L) FloatVector.fromArray(S, s, i).mul(alpha).intoArray(s, i);
        }
    }

    /**
     * Additive scores of batch row {@code b} into {@code s [U, Tp]}: {@code ekt [A, Tp] = W1 · enc^T},
     * {@code dk [U, Ap] = dec · W2^T}, then {@code s[u,t] = sum_a v[a] tanh(ekt[a,t] + dk[u,a])} with the kernels' tanh.
     */
    private void additiveScores(Scratch sc, int b, int U, int B, double[] dec) {
        int tp = sc.tp;
        sc.x = Scratch.grow(sc.x, U * hd);
        sc.ekt = Scratch.grow(sc.ekt, na * tp);
        sc.dk = Scratch.grow(sc.dk, U * ap);
        float[] x = sc.x, ekt = sc.ekt, dk = sc.dk;
        for (int uu = 0; uu < U; uu++) {
            int src = (uu * B + b) * hd, dst = uu * hd;
            for (int j = 0; j < hd; j++) x[dst + j] = (float) dec[src + j];
        }
        matmul(na, tp, he, w1, 0, he, sc.encT, 0, tp, ekt, 0, tp);
        matmul(U, ap, hd, x, 0, hd, w2T, 0, ap, dk, 0, ap);
        for (int uu = 0; uu < U; uu++) additiveRow(na, tp, ekt, dk, uu * ap, v, sc.s, uu * tp);
    }

    /** One decoder step's scores; the only call site of the vector tanh here, so C2 inlines it (see CpuAttentionKernels). */
    private static void additiveRow(int na, int tp, float[] ekt, float[] dk, int d, float[] v, float[] s, int out) {
        for (int t = 0; t < tp; t += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int a = 0; a < na; a++) {
                FloatVector x = FloatVector.fromArray(S, ekt, a * tp + t).add(dk[d + a]);
                acc = CpuAttentionKernels.tanh(x).fma(FloatVector.broadcast(S, v[a]), acc);
            }
            acc.intoArray(s, out + t);
        }
    }

    /** Scores, weights and context of batch row {@code b}. */
    private void forwardRow(Scratch sc, int b, int U, int B, int T, float alpha, double[] dec, double[] enc, int[] mask,
                            double[] scores, double[] weights, double[] context) {
        prepareRow(sc, b, U, B, T, alpha, dec, enc, mask);
        int tp = sc.tp, nValid = sc.nValid;
        sc.w = Scratch.grow(sc.w, U * T);
        sc.ctx = Scratch.grow(sc.ctx, U * hep);
        float[] s = sc.s, w = sc.w, ctx = sc.ctx;
        int[] idx = sc.idx;
        for (int uu = 0; uu < U; uu++) {
            int row = uu * tp, out = (uu * B + b) * T;
            for (int t = 0; t < T; t++) scores[out + t] = s[row + t];
            if (nValid == 0) continue; // weights stay 0; so does the context
            softmaxRow(s, row, tp, sc.valid);
            for (int t = 0; t < T; t++) weights[out + t] = s[row + t];
            for (int q = 0; q < nValid; q++) w[uu * nValid + q] = s[row + idx[q]];
        }
        if (nValid == 0) return;
        // ctx [U, Hep] = weights of the valid positions [U, nValid] · their enc rows [nValid, Hep]
        matmul(U, hep, nValid, w, 0, nValid, sc.encRows, 0, hep, ctx, 0, hep);
        for (int uu = 0; uu < U; uu++) {
            int src = uu * hep, out = (uu * B + b) * he;
            for (int j = 0; j < he; j++) context[out + j] = ctx[src + j];
        }
    }

    /**
     * Gradients of batch row {@code b}, from the recomputed weights W and query X (dec, or q = dec W_a):
     * {@code dW = dC enc^T}, {@code dS = W (dW - rowsum(W dW))} (0 where masked), {@code dX = alpha dS enc},
     * {@code denc = W^T dC + alpha dS^T X}, the last as one product over the stacked {@code [dC; X]}. For dot and
     * scaled dX is ddec; for general it is dq, kept in {@code dqAll} for dW_a, and {@code ddec = dq W_a^T}.
     * Masked positions have W = dS = 0, so only valid positions enter the products and the masked rows of denc
     * stay 0 (for general, a fully masked row leaves its dq rows 0 as well).
     */
    private void backwardRow(Scratch sc, int b, int U, int B, int T, float alpha, double[] dec, double[] enc, int[] mask,
                             double[] dcontext, double[] dscores, double[] ddec, double[] denc, float[] dqAll) {
        prepareRow(sc, b, U, B, T, alpha, dec, enc, mask);
        int tp = sc.tp, nValid = sc.nValid;
        if (nValid == 0) return; // every gradient of this row is 0
        float[] s = sc.s, stack = sc.stack, valid = sc.valid;
        int[] idx = sc.idx;
        sc.dw = Scratch.grow(sc.dw, U * tp);
        sc.w = Scratch.grow(sc.w, U * nValid);
        sc.wide = Scratch.grow(sc.wide, nValid * 2 * U);
        sc.ctx = Scratch.grow(sc.ctx, U * hep);
        sc.rows = Scratch.grow(sc.rows, nValid * hep);
        float[] dw = sc.dw, dsc = sc.w, wide = sc.wide, dx = sc.ctx, rows = sc.rows;
        // dC [U, Hep] in rows 0..U-1 of stack
        for (int uu = 0; uu < U; uu++) {
            int src = (uu * B + b) * he, dst = uu * hep;
            for (int j = 0; j < he; j++) stack[dst + j] = (float) dcontext[src + j];
            for (int j = he; j < hep; j++) stack[dst + j] = 0f;
        }
        // dW [U, Tp] = dC · enc^T
        matmul(U, tp, he, stack, 0, hep, sc.encT, 0, tp, dw, 0, tp);
        int w2 = 2 * U;
        for (int uu = 0; uu < U; uu++) {
            int row = uu * tp, out = (uu * B + b) * T;
            softmaxGradRow(s, dw, row, tp, valid);
            for (int t = 0; t < T; t++) dscores[out + t] = dw[row + t];
            for (int q = 0; q < nValid; q++) {
                int t = idx[q];
                float g = alpha * dw[row + t];
                dsc[uu * nValid + q] = g;
                wide[q * w2 + uu] = s[row + t];
                wide[q * w2 + U + uu] = g;
            }
        }
        // dX [U, Hep] = alpha dS [U, nValid] · enc rows [nValid, Hep]: ddec for dot and scaled, dq for general
        matmul(U, hep, nValid, dsc, 0, nValid, sc.encRows, 0, hep, dx, 0, hep);
        float[] dd = dx;
        int ldd = hep;
        if (dqAll != null) {
            for (int uu = 0; uu < U; uu++) System.arraycopy(dx, uu * hep, dqAll, (uu * B + b) * hep, hep);
            // ddec [U, Hdp] = dq [U, He] · W_a^T
            sc.dd = Scratch.grow(sc.dd, U * hdp);
            dd = sc.dd;
            ldd = hdp;
            matmul(U, hdp, he, dx, 0, hep, waT, 0, hdp, dd, 0, hdp);
        }
        for (int uu = 0; uu < U; uu++) {
            int src = uu * ldd, out = (uu * B + b) * hd;
            for (int j = 0; j < hd; j++) ddec[out + j] = dd[src + j];
        }
        // denc rows of the valid positions [nValid, Hep] = [W^T | alpha dS^T] [nValid, 2U] · [dC; dec] [2U, Hep]
        matmul(nValid, hep, w2, wide, 0, w2, stack, 0, hep, rows, 0, hep);
        for (int q = 0; q < nValid; q++) {
            int src = q * hep, out = (idx[q] * B + b) * he;
            for (int j = 0; j < he; j++) denc[out + j] = rows[src + j];
        }
    }

    /** In place: {@code s} row to its softmax W, {@code dw} row to {@code dS = W (dW - sum W dW)}, 0 where not valid. */
    private static void softmaxGradRow(float[] s, float[] dw, int row, int tp, float[] valid) {
        softmaxRow(s, row, tp, valid);
        FloatVector acc = FloatVector.zero(S);
        for (int t = 0; t < tp; t += L) {
            acc = FloatVector.fromArray(S, s, row + t).fma(FloatVector.fromArray(S, dw, row + t), acc);
        }
        float dot = CpuMath.sumLanes(acc);
        for (int t = 0; t < tp; t += L) {
            FloatVector wv = FloatVector.fromArray(S, s, row + t);
            wv.mul(FloatVector.fromArray(S, dw, row + t).sub(dot)).mul(FloatVector.fromArray(S, valid, t))
                    .intoArray(dw, row + t);
        }
    }

    /** In place: softmax of {@code s[row .. row+tp)} over the lanes where {@code valid} is 1, exactly 0 elsewhere. */
    private static void softmaxRow(float[] s, int row, int tp, float[] valid) {
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        FloatVector ninf = mx;
        for (int t = 0; t < tp; t += L) {
            FloatVector v = FloatVector.fromArray(S, s, row + t);
            FloatVector ok = FloatVector.fromArray(S, valid, t);
            mx = mx.max(v.blend(ninf, ok.compare(VectorOperators.EQ, 0f)));
        }
        float m = mx.reduceLanes(VectorOperators.MAX);
        FloatVector sum = FloatVector.zero(S);
        for (int t = 0; t < tp; t += L) {
            FloatVector v = FloatVector.fromArray(S, s, row + t);
            FloatVector e = CpuMath.exp(v.sub(m)).mul(FloatVector.fromArray(S, valid, t));
            e.intoArray(s, row + t);
            sum = sum.add(e);
        }
        float inv = 1f / CpuMath.sumLanes(sum);
        for (int t = 0; t < tp; t += L) FloatVector.fromArray(S, s, row + t).mul(inv).intoArray(s, row + t);
    }

    // ---------------------------------------------------------------- products on heap arrays

    /**
     * {@code c[i, j] = sum_p a[i, p] * b[p, j]} for {@code i < m}, {@code j < n}, {@code p < k};
     * row-major with the given leading dimensions; {@code n} a multiple of the vector length. Six rows by two vectors
     * per register block, as CpuGemm's small-M kernel.
     */
    static void matmul(int m, int n, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb, float[] c, int cOff,
                       int ldc) {
        int j = 0;
        for (; j + 2 * L <= n; j += 2 * L) {
            int i = 0;
            for (; i + 6 <= m; i += 6) block6x2(i, j, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            for (; i < m; i++) block1x2(i, j, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        }
        for (; j < n; j += L) {
            int i = 0;
            for (; i + 6 <= m; i += 6) block6x1(i, j, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
            for (; i < m; i++) block1x1(i, j, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        }
    }

    private static void block6x2(int i, int j, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                 float[] c, int cOff, int ldc) {
        int a0 = aOff + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int p = 0; p < k; p++) {
            int bo = bOff + p * ldb + j;
            FloatVector b0 = FloatVector.fromArray(S, b, bo);
            FloatVector b1 = FloatVector.fromArray(S, b, bo + L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + p]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[a1 + p]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[a2 + p]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[a3 + p]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[a4 + p]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[a5 + p]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        int o = cOff + i * ldc + j;
        c00.intoArray(c, o);
        c01.intoArray(c, o + L);
        o += ldc;
        c10.intoArray(c, o);
        c11.intoArray(c, o + L);
        o += ldc;
        c20.intoArray(c, o);
        c21.intoArray(c, o + L);
        o += ldc;
        c30.intoArray(c, o);
        c31.intoArray(c, o + L);
        o += ldc;
        c40.intoArray(c, o);
        c41.intoArray(c, o + L);
        o += ldc;
        c50.intoArray(c, o);
        c51.intoArray(c, o + L);
    }

    private static void block1x2(int i, int j, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                 float[] c, int cOff, int ldc) {
        int a0 = aOff + i * lda;
        FloatVector c0 = FloatVector.zero(S), c1 = c0;
        for (int p = 0; p < k; p++) {
            int bo = bOff + p * ldb + j;
            FloatVector x = FloatVector.broadcast(S, a[a0 + p]);
            c0 = x.fma(FloatVector.fromArray(S, b, bo), c0);
            c1 = x.fma(FloatVector.fromArray(S, b, bo + L), c1);
        }
        int o = cOff + i * ldc + j;
        c0.intoArray(c, o);
        c1.intoArray(c, o + L);
    }

    private static void block6x1(int i, int j, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                 float[] c, int cOff, int ldc) {
        int a0 = aOff + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        for (int p = 0; p < k; p++) {
            FloatVector y = FloatVector.fromArray(S, b, bOff + p * ldb + j);
            c0 = FloatVector.broadcast(S, a[a0 + p]).fma(y, c0);
            c1 = FloatVector.broadcast(S, a[a1 + p]).fma(y, c1);
            c2 = FloatVector.broadcast(S, a[a2 + p]).fma(y, c2);
            c3 = FloatVector.broadcast(S, a[a3 + p]).fma(y, c3);
            c4 = FloatVector.broadcast(S, a[a4 + p]).fma(y, c4);
            c5 = FloatVector.broadcast(S, a[a5 + p]).fma(y, c5);
        }
        int o = cOff + i * ldc + j;
        c0.intoArray(c, o);
        c1.intoArray(c, o + ldc);
        c2.intoArray(c, o + 2 * ldc);
        c3.intoArray(c, o + 3 * ldc);
        c4.intoArray(c, o + 4 * ldc);
        c5.intoArray(c, o + 5 * ldc);
    }

    private static void block1x1(int i, int j, int k, float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                                 float[] c, int cOff, int ldc) {
        int a0 = aOff + i * lda;
        FloatVector c0 = FloatVector.zero(S);
        for (int p = 0; p < k; p++) {
            c0 = FloatVector.broadcast(S, a[a0 + p]).fma(FloatVector.fromArray(S, b, bOff + p * ldb + j), c0);
        }
        c0.intoArray(c, cOff + i * ldc + j);
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("CpuAttention: used after close()");
    }

    /** The fallback engine with the weights last set, made on first use. */
    private AttentionEngine fallback() {
        if (schedule == null) {
            AttentionEngine s = makeFallback.get();
            try {
                if (weights != null) s.setWeights(weights);
            } catch (RuntimeException | Error e) {
                s.close();
                throw e;
            }
            schedule = s;
        }
        return schedule;
    }

    /** Frees the fallback's device memory (if one was made) and stops an owned pool; closing twice is harmless. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            if (schedule != null) schedule.close();
        } finally {
            if (ownsPool) pool.close();
        }
    }
}
