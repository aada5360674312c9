package dev.recur.backend.cpu;

import dev.recur.backend.AttentionKernels;
import dev.recur.backend.Kernels;
import dev.recur.config.DropoutMask;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The named kernels of {@link Kernels} as Java code, each with the argument list and the semantics of its
 * {@code kernels/common/*.h} body (the comments there hold the equations; the Java follows them line by line).
 * Where the OpenCL version runs one work item per element, these run one row of a grid's dimension 0 at a
 * time: the per-step cell kernels copy a row's operands into scratch arrays and run {@link CpuRows}' small
 * vector loops over them (with {@link CpuMath}'s exp/sigmoid/tanh), and rows go to the backend's thread pool
 * when a launch is large enough to pay for it; the small layer-level kernels run the formulas on scalars.
 *
 * <p>Like the device kernels, a launch covers the work items inside both its grid and the extents given as
 * arguments; anything indexed outside a buffer throws {@link IndexOutOfBoundsException} instead of
 * corrupting memory.
 */
final class CpuKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;

    /** Below this many elements a launch runs on the calling thread (see {@code CpuBackend.Thresholds}). */
    static final long PARALLEL_MIN_ELEMENTS = 1L << 16;

    /**
     * A parameter: its name, and its kind: 'i' int, 'f' float, 'F' F32 buffer, 'I' I32 buffer, 'R' an F32 buffer
     * the kernel only reads (its version, which keys the backend's packed-weight cache, stays as it is).
     */
    record Param(String name, char kind) {}

    /** A kernel's parameter list and its Java body. */
    record Spec(String name, List<Param> params, Body body) {}

    @FunctionalInterface
    interface Body {
        void run(CpuKernels k, Args a);
    }

    /** One launch's arguments, already checked against the parameter kinds, and its grid (padded to 3-D). */
    static final class Args {
        final long[] grid;
        final int[] ints;
        final float[] floats;
        final MemorySegment[] segs;
        final CpuBuffer[] bufs;

        Args(long[] grid, int n) {
            this.grid = grid;
            this.ints = new int[n];
            this.floats = new float[n];
            this.segs = new MemorySegment[n];
            this.bufs = new CpuBuffer[n];
        }

        int i(int pos) {
            return ints[pos];
        }

        float f(int pos) {
            return floats[pos];
        }

        MemorySegment m(int pos) {
            return segs[pos];
        }

        /** Work items in grid dimension {@code dim} that are also inside {@code extent}. */
        int ext(int dim, long extent) {
            return (int) Math.max(0, Math.min(grid[dim], extent));
        }
    }

    static final Map<String, Spec> SPECS = new LinkedHashMap<>();

    private static final String DROP = " seedLo:i seedHi:i layer:i thresh:i scale:f";

    static {
        spec(Kernels.RNN_STEP_FWD, "s:i T:i B:i H:i D:i act:i lengths:I xw:F hw:F bih:F bhh:F h:F y:F",
                CpuKernels::rnnStepFwd);
        spec(Kernels.RNN_STEP_BWD, "s:i T:i B:i H:i D:i act:i lengths:I dy:F dhN:F dhrec:F y:F dgs:F dgall:F",
                CpuKernels::rnnStepBwd);
        spec(Kernels.LSTM_STEP_FWD, "s:i T:i B:i H:i D:i P:i proj:i peep:i coupled:i training:i lengths:I xw:F hw:F "
                + "bih:F bhh:F peepw:F c:F h:F hin:F y:F gsave:F csave:F mout:F msave:F" + DROP, CpuKernels::lstmStepFwd);
        spec(Kernels.LSTM_STEP_BWD, "s:i T:i B:i H:i D:i P:i proj:i peep:i coupled:i lengths:I dy:F dhN:F dhrec:F "
                + "dm:F dcN:F dc:F gsave:F csave:F c0:F peepw:F dgs:F dgall:F" + DROP, CpuKernels::lstmStepBwd);
        spec(Kernels.LSTM_PROJ_FWD, "s:i T:i B:i P:i D:i lengths:I hp:F h:F hin:F y:F" + DROP, CpuKernels::lstmProjFwd);
        spec(Kernels.LSTM_PROJ_BWD, "s:i T:i B:i P:i D:i lengths:I dy:F dhN:F dhrec:F dht:F dhtall:F" + DROP,
                CpuKernels::lstmProjBwd);
        spec(Kernels.LSTM_PEEPHOLE_GRAD, "T:i B:i H:i D:i G:i coupled:i lengths:I dgall:F csave:F c0:F dst:F",
                CpuKernels::lstmPeepholeGrad);
        spec(Kernels.GRU_STEP_FWD, "s:i T:i B:i H:i D:i training:i lengths:I xw:F hw:F bih:F bhh:F h:F hin:F y:F "
                + "gsave:F" + DROP, CpuKernels::gruStepFwd);
        spec(Kernels.GRU_STEP_BWD, "s:i T:i B:i H:i D:i lengths:I dy:F dhN:F dhrec:F ddir:F gsave:F y:F h0:F dgs:F "
                + "dgall:F dgallh:F" + DROP, CpuKernels::gruStepBwd);
        spec(Kernels.GRU_BEFORE_GATE_FWD, "s:i T:i B:i H:i D:i lengths:I xw:F hw:F bih:F bhh:F hsrc:F rz:F rh:F",
                CpuKernels::gruBeforeGateFwd);
        spec(Kernels.GRU_BEFORE_STEP_FWD, "s:i T:i B:i H:i D:i training:i lengths:I xw:F hw:F bih:F bhh:F rz:F rh:F h:F "
                + "hin:F y:F gsave:F" + DROP, CpuKernels::gruBeforeStepFwd);
        spec(Kernels.GRU_BEFORE_STEP_BWD, "s:i T:i B:i H:i D:i lengths:I dy:F dhN:F dhrec:F ddir:F gsave:F y:F h0:F "
                + "dgs:F dgall:F" + DROP, CpuKernels::gruBeforeStepBwd);
        spec(Kernels.GRU_BEFORE_RESET_BWD, "s:i T:i B:i H:i D:i lengths:I drh:F gsave:F y:F h0:F dgs:F dgall:F dhrec:F"
                + DROP, CpuKernels::gruBeforeResetBwd);
        spec(Kernels.RNN_DH0, "B:i P:i D:i hasDdir:i dhrec:F ddir:F dh0:F" + DROP, CpuKernels::rnnDh0);
        spec(Kernels.MASK_STATE, "B:i P:i D:i src:F dst:F" + DROP, CpuKernels::maskState);
        spec(Kernels.GATHER_HPREV, "T:i B:i P:i D:i lengths:I y:F h0:F dst:F" + DROP, CpuKernels::gatherHprev);
        spec(Kernels.INPUT_DROPOUT_FWD, "T:i B:i I:i D:i x:F dst:F" + DROP, CpuKernels::inputDropoutFwd);
        spec(Kernels.INPUT_DROPOUT_BWD, "T:i B:i I:i D:i dxd:F dx:F" + DROP, CpuKernels::inputDropoutBwd);
        spec(Kernels.MERGE_FWD, "T:i B:i P:i D:i W:i mode:i residual:i lengths:I y:F in:F dst:F" + DROP,
                CpuKernels::mergeFwd);
        spec(Kernels.MERGE_BWD, "T:i B:i P:i D:i W:i mode:i lengths:I dout:F y:F dy:F", CpuKernels::mergeBwd);
        spec(Kernels.LAYER_INPUT_BWD, "T:i B:i W:i residual:i lengths:I dx:F dout:F dst:F" + DROP,
                CpuKernels::layerInputBwd);
        spec(Kernels.COL_SUM, "M:i N:i src:F dst:F beta:f", CpuKernels::colSum);
        spec(Kernels.TRANSPOSE, "rows:i cols:i inner:i src:R srcOff:i srcLd:i dst:F dstOff:i dstLd:i beta:f",
                (k, a) -> CpuTranspose.run(k.pool, a.grid, a.i(0), a.i(1), a.i(2), a.m(3), a.i(4), a.i(5), a.m(6), a.i(7),
                        a.i(8), a.f(9)));
        // Attention (dev.recur.schedule.AttentionSchedule); bodies in CpuAttentionKernels.
        spec(AttentionKernels.ATTN_SCORES_ADDITIVE_FWD, "U:i B:i T:i A:i ekt:F dk:F v:F scores:F",
                (k, a) -> CpuAttentionKernels.additiveFwd(a.grid, a.i(0), a.i(1), a.i(2), a.i(3), a.m(4), a.m(5), a.m(6), a.m(7)));
        spec(AttentionKernels.ATTN_SCORES_ADDITIVE_BWD, "U:i B:i T:i A:i ek:F dk:F v:F ds:F ddk:F dek:F dvpart:F",
                (k, a) -> CpuAttentionKernels.additiveBwd(a.grid, a.i(0), a.i(1), a.i(2), a.i(3), a.m(4), a.m(5), a.m(6),
                        a.m(7), a.m(8), a.m(9), a.m(10)));
        spec(AttentionKernels.MASKED_SOFTMAX_FWD, "U:i B:i T:i mask:I scores:F weights:F",
                (k, a) -> CpuAttentionKernels.maskedSoftmaxFwd(a.grid, a.i(0), a.i(1), a.i(2), a.m(3), a.m(4), a.m(5)));
        spec(AttentionKernels.MASKED_SOFTMAX_BWD, "U:i B:i T:i mask:I weights:F dw:F ds:F",
                (k, a) -> CpuAttentionKernels.maskedSoftmaxBwd(a.grid, a.i(0), a.i(1), a.i(2), a.m(3), a.m(4), a.m(5),
                        a.m(6)));
        spec(Kernels.COL_DOT, "M:i N:i a:F b:F dst:F beta:f", CpuKernels::colDot);
        spec(Kernels.LN_ROWS_FWD, "rows:i H:i G:i D:i training:i v:F gain:F shift:F xhat:F rstd:F", CpuKernels::lnRowsFwd);
        spec(Kernels.LN_ROWS_BWD, "rows:i H:i G:i D:i da:F gain:F xhat:F rstd:F dv:F", CpuKernels::lnRowsBwd);
        spec(Kernels.LN_STEP_FWD, "s:i T:i B:i H:i D:i G:i g0:i nblk:i training:i lengths:I v:F gain:F shift:F xhat:F "
                + "rstd:F", CpuKernels::lnStepFwd);
        // The whole-sequence forwards: bodies in CpuSeqKernels (one launch per layer, on all threads).
        spec(Kernels.LSTM_SEQ_FWD, "T:i B:i H:i D:i peep:i coupled:i training:i lengths:I xw:F whhT:R hw:F bih:F bhh:F "
                + "peepw:F c:F h:F hin:F y:F gsave:F csave:F" + DROP, (k, a) -> k.seq.lstm(a, a.bufs[9]));
        spec(Kernels.GRU_SEQ_FWD, "T:i B:i H:i D:i training:i lengths:I xw:F whhT:R hw:F bih:F bhh:F h:F hin:F y:F "
                + "gsave:F" + DROP, (k, a) -> k.seq.gru(a, a.bufs[7]));
        spec(Kernels.RNN_SEQ_FWD, "T:i B:i H:i D:i act:i lengths:I xw:F whhT:R hw:F bih:F bhh:F h:F y:F",
                (k, a) -> k.seq.rnn(a, a.bufs[7]));
        spec(Kernels.LSTM_SEQ_BWD, "T:i B:i H:i D:i peep:i coupled:i lengths:I dy:F dhN:F dhrec:F dcN:F dc:F gsave:F "
                + "csave:F c0:F peepw:F whh:R dgs:F dgall:F" + DROP, (k, a) -> k.seq.lstmBackward(a, a.bufs[16]));
        spec(Kernels.GRU_SEQ_BWD, "T:i B:i H:i D:i lengths:I dy:F dhN:F dhrec:F ddir:F gsave:F y:F h0:F whh:R dgs:F "
                + "dgall:F dgallh:F" + DROP, (k, a) -> k.seq.gruBackward(a, a.bufs[12]));
        spec(Kernels.RNN_SEQ_BWD, "T:i B:i H:i D:i act:i lengths:I dy:F dhN:F dhrec:F y:F whh:R dgs:F dgall:F",
                (k, a) -> k.seq.rnnBackward(a, a.bufs[10]));
        spec(Kernels.LN_STEP_BWD, "s:i T:i B:i H:i D:i G:i g0:i nblk:i lengths:I dg:F gain:F xhat:F rstd:F dvall:F",
                CpuKernels::lnStepBwd);
        // Training and decoding (dev.recur.backend.TrainKernels); bodies in CpuTrainKernels.
        CpuTrainKernels.register(CpuKernels::spec);
    }

    private static void spec(String name, String signature, Body body) {
        List<Param> params = new java.util.ArrayList<>();
        for (String p : signature.trim().split("\\s+")) {
            int colon = p.indexOf(':');
            params.add(new Param(p.substring(0, colon), p.charAt(colon + 1)));
        }
        SPECS.put(name, new Spec(name, List.copyOf(params), body));
    }

    private final CpuPool pool;
    private final long parallelMinElements;
    final CpuSeqKernels seq;

    CpuKernels(CpuPool pool, long parallelMinElements, CpuSeqKernels seq) {
        this.pool = pool;
        this.parallelMinElements = parallelMinElements;
        this.seq = seq;
        this.scratch = new float[pool.threads()][12][];
    }

    // ------------------------------------------------------------------------------------------------------
    // Helpers

    @FunctionalInterface
    interface Row {
        void run(int row, int thread);
    }

    /** Per-thread scratch rows, grown on demand and kept (a launch per step must not allocate). */
    private final float[][][] scratch;

    float[] buf(int thread, int slot, int size) {
        float[][] mine = scratch[thread];
        float[] b = mine[slot];
        if (b == null || b.length < size) b = mine[slot] = new float[Math.max(size, 64)];
        return b;
    }

    /** Runs rows [0, n) of {@code width} elements each, over the pool when the launch is large. */
    void rows(int n, long width, Row body) {
        if (n <= 0) return;
        if (pool.threads() > 1 && n > 1 && (long) n * width >= parallelMinElements) {
            int tasks = Math.min(n, 4 * pool.threads());
            int per = (n + tasks - 1) / tasks;
            pool.run(tasks, (t, th) -> {
                int r1 = Math.min(n, (t + 1) * per);
                for (int r = t * per; r < r1; r++) body.run(r, th);
            });
        } else {
            for (int r = 0; r < n; r++) body.run(r, 0);
        }
    }

    private static float ld(MemorySegment s, long i) {
        return s.getAtIndex(F, i);
    }

    private static void st(MemorySegment s, long i, float v) {
        s.setAtIndex(F, i, v);
    }

    private static FloatVector vld(MemorySegment s, long i) {
        return FloatVector.fromMemorySegment(S, s, i * Float.BYTES, NATIVE);
    }

    private static void zero(MemorySegment s, long from, int count) {
        s.asSlice(from * Float.BYTES, (long) count * Float.BYTES).fill((byte) 0);
    }

    private static int len(MemorySegment lengths, int b) {
        return lengths.getAtIndex(I, b);
    }

    /** [T,B,D,W] element (t, b, d, j). */
    private static long tbd(int t, int b, int d, int B, int D, int W, int j) {
        return ((long) (t * B + b) * D + d) * W + j;
    }

    /** [D,B,W] element (d, b, j). */
    private static long dbw(int d, int b, int B, int W, int j) {
        return (long) (d * B + b) * W + j;
    }

    private static int maskPrefix(int seedLo, int seedHi, int stream) {
        return CpuRows.maskPrefix(seedLo, seedHi, stream);
    }

    private static float mask(int prefix, int index, int thresh, float scale) {
        return CpuRows.mask(prefix, index, thresh, scale);
    }

    private static int recStream(int layer, int d) {
        return DropoutMask.stream(layer, d, DropoutMask.RECURRENT);
    }

    // ------------------------------------------------------------------------------------------------------
    // Plain RNN (kernels/common/rnn.h)

    private static void rnnStepFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        boolean relu = a.i(5) != 0;
        MemorySegment lengths = a.m(6), xw = a.m(7), hw = a.m(8), bih = a.m(9), bhh = a.m(10), h = a.m(11), y = a.m(12);
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            if (s >= len) {
                zero(y, tbd(s, b, d, B, D, H, 0), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long xo = tbd(t, b, d, B, D, H, 0), ho = dbw(d, b, B, H, 0), bo = (long) d * H;
            float[] pre = k.buf(th, 0, nj), tmp = k.buf(th, 1, nj);
            CpuRows.load(xw, xo, pre, 0, nj);
            CpuRows.load(hw, ho, tmp, 0, nj);
            CpuRows.add(pre, 0, tmp, 0, nj);
            CpuRows.load(bih, bo, tmp, 0, nj);
            CpuRows.add(pre, 0, tmp, 0, nj);
            CpuRows.load(bhh, bo, tmp, 0, nj);
            CpuRows.add(pre, 0, tmp, 0, nj);
            if (relu) CpuRows.relu(pre, 0, nj);
            else CpuRows.tanh(pre, 0, nj);
            CpuRows.store(pre, 0, h, ho, nj);
            CpuRows.store(pre, 0, y, xo, nj);
        });
    }

    private static void rnnStepBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        boolean relu = a.i(5) != 0;
        MemorySegment lengths = a.m(6), dy = a.m(7), dhN = a.m(8), dhrec = a.m(9), y = a.m(10), dgs = a.m(11),
                dgall = a.m(12);
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long sd = dbw(d, b, B, H, 0);
            if (s >= len) {
                zero(dgs, sd, nj);
                zero(dgall, tbd(s, b, d, B, D, H, 0), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long td = tbd(t, b, d, B, D, H, 0);
            float[] dh = k.buf(th, 0, nj), tmp = k.buf(th, 1, nj);
            CpuRows.load(s == len - 1 ? dhN : dhrec, sd, dh, 0, nj);
            CpuRows.load(dy, td, tmp, 0, nj);
            CpuRows.add(dh, 0, tmp, 0, nj);
            CpuRows.load(y, td, tmp, 0, nj);
            CpuRows.rnnBackward(dh, tmp, relu, nj);
            CpuRows.store(dh, 0, dgs, sd, nj);
            CpuRows.store(dh, 0, dgall, td, nj);
        });
    }

    // ------------------------------------------------------------------------------------------------------
    // LSTM (kernels/common/lstm.h)

    private static void lstmStepFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4), P = a.i(5);
        boolean proj = a.i(6) != 0, peep = a.i(7) != 0, coupled = a.i(8) != 0, training = a.i(9) != 0;
        MemorySegment lengths = a.m(10), xw = a.m(11), hw = a.m(12), bih = a.m(13), bhh = a.m(14), peepw = a.m(15),
                c = a.m(16), h = a.m(17), hin = a.m(18), y = a.m(19), gsave = a.m(20), csave = a.m(21),
                mout = a.m(22), msave = a.m(23);
        int seedLo = a.i(24), seedHi = a.i(25), layer = a.i(26), thresh = a.i(27);
        float scale = a.f(28);
        int G = coupled ? 3 : 4;
        int GH = G * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        int bi = 0, bf = H, bg = coupled ? H : 2 * H, bo = coupled ? 2 * H : 3 * H;
        k.rows(nd * nb, (long) nj * G, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            if (s >= len) {
                if (!proj) zero(y, tbd(s, b, d, B, D, P, 0), nj);
                if (training) {
                    for (int q = 0; q < G; q++) zero(gsave, tbd(s, b, d, B, D, GH, q * H), nj);
                    zero(csave, tbd(s, b, d, B, D, H, 0), nj);
                    if (proj) zero(msave, tbd(s, b, d, B, D, H, 0), nj);
                }
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long xo = tbd(t, b, d, B, D, GH, 0), ho = dbw(d, b, B, GH, 0), bb = (long) d * GH;
            long ch = dbw(d, b, B, H, 0), cs = tbd(t, b, d, B, D, H, 0);
            long hh = dbw(d, b, B, P, 0), yo = tbd(t, b, d, B, D, P, 0);
            float[] pre = k.buf(th, 0, GH), tmp = k.buf(th, 1, GH), cp = k.buf(th, 2, nj), cn = k.buf(th, 3, nj);
            float[] m = k.buf(th, 4, nj);
            // Pre-activations of all gates: the gate blocks are whole rows of H, loaded in one piece.
            CpuRows.load(xw, xo, pre, 0, GH);
            CpuRows.load(hw, ho, tmp, 0, GH);
            CpuRows.add(pre, 0, tmp, 0, GH);
            CpuRows.load(bih, bb, tmp, 0, GH);
            CpuRows.add(pre, 0, tmp, 0, GH);
            CpuRows.load(bhh, bb, tmp, 0, GH);
            CpuRows.add(pre, 0, tmp, 0, GH);
            CpuRows.load(c, ch, cp, 0, nj);
            float[] pw = null;
            if (peep) {
                pw = k.buf(th, 5, 3 * H);
                CpuRows.load(peepw, (long) d * 3 * H, pw, 0, 3 * H);
                CpuRows.fma(pre, bi, pw, 0, cp, 0, nj);
                if (!coupled) CpuRows.fma(pre, bf, pw, H, cp, 0, nj);
            }
            CpuRows.sigmoid(pre, bi, nj);
            if (!coupled) CpuRows.sigmoid(pre, bf, nj);
            CpuRows.tanh(pre, bg, nj);
            CpuRows.lstmCell(pre, bi, bf, bg, coupled, cp, cn, nj);
            if (peep) CpuRows.fma(pre, bo, pw, 2 * H, cn, 0, nj);
            CpuRows.sigmoid(pre, bo, nj);
            CpuRows.store(cn, 0, c, ch, nj);
            if (training) {
                if (nj == H) {
                    CpuRows.store(pre, 0, gsave, xo, GH);
                } else {
                    for (int q = 0; q < G; q++) CpuRows.store(pre, q * H, gsave, xo + (long) q * H, nj);
                }
                CpuRows.store(cn, 0, csave, cs, nj);
            }
            CpuRows.tanh(cn, 0, m, 0, nj);
            CpuRows.mul(m, 0, pre, bo, nj);
            if (proj) {
                CpuRows.store(m, 0, mout, ch, nj);
                if (training) CpuRows.store(m, 0, msave, cs, nj);
            } else {
                CpuRows.store(m, 0, h, hh, nj);
                CpuRows.store(m, 0, y, yo, nj);
                if (thresh != 0) {
                    CpuRows.mask(m, 0, nj, maskPrefix(seedLo, seedHi, recStream(layer, d)), b * H, thresh, scale);
                    CpuRows.store(m, 0, hin, hh, nj);
                }
            }
        });
    }

    private static void lstmStepBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4), P = a.i(5);
        boolean proj = a.i(6) != 0, peep = a.i(7) != 0, coupled = a.i(8) != 0;
        MemorySegment lengths = a.m(9), dy = a.m(10), dhN = a.m(11), dhrec = a.m(12), dm = a.m(13), dcN = a.m(14),
                dc = a.m(15), gsave = a.m(16), csave = a.m(17), c0 = a.m(18), peepw = a.m(19), dgs = a.m(20),
                dgall = a.m(21);
        int seedLo = a.i(22), seedHi = a.i(23), layer = a.i(24), thresh = a.i(25);
        float scale = a.f(26);
        int G = coupled ? 3 : 4;
        int GH = G * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, (long) nj * G, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long so = dbw(d, b, B, GH, 0);
            if (s >= len) {
                for (int q = 0; q < G; q++) {
                    zero(dgs, so + (long) q * H, nj);
                    zero(dgall, tbd(s, b, d, B, D, GH, q * H), nj);
                }
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            boolean last = s == len - 1;
            long sh = dbw(d, b, B, H, 0), sp = dbw(d, b, B, P, 0), yo = tbd(t, b, d, B, D, P, 0);
            boolean first = d == 0 ? t == 0 : t == len - 1;
            long cpo = first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
            long go = tbd(t, b, d, B, D, GH, 0);
            float[] dh = k.buf(th, 0, nj), tmp = k.buf(th, 1, nj), dcin = k.buf(th, 2, nj), cp = k.buf(th, 3, nj);
            float[] tc = k.buf(th, 4, nj), gates = k.buf(th, 5, GH), dg = k.buf(th, 6, GH), dcPrev = k.buf(th, 7, nj);
            if (proj) {
                CpuRows.load(dm, sh, dh, 0, nj);
            } else {
                if (last) {
                    CpuRows.load(dhN, sp, dh, 0, nj);
                } else {
                    CpuRows.load(dhrec, sp, dh, 0, nj);
                    CpuRows.mask(dh, 0, nj, maskPrefix(seedLo, seedHi, recStream(layer, d)), b * P, thresh, scale);
                }
                CpuRows.load(dy, yo, tmp, 0, nj);
                CpuRows.add(dh, 0, tmp, 0, nj);
            }
            CpuRows.load(last ? dcN : dc, sh, dcin, 0, nj);
            CpuRows.load(first ? c0 : csave, cpo, cp, 0, nj);
            CpuRows.load(csave, tbd(t, b, d, B, D, H, 0), tc, 0, nj);
            CpuRows.tanh(tc, 0, nj);
            CpuRows.load(gsave, go, gates, 0, GH);
            float[] pw = null;
            if (peep) {
                pw = k.buf(th, 8, 3 * H);
                CpuRows.load(peepw, (long) d * 3 * H, pw, 0, 3 * H);
            }
            CpuRows.lstmBackward(dh, dcin, cp, tc, gates, H, coupled, pw, dg, dcPrev, nj);
            CpuRows.store(dcPrev, 0, dc, sh, nj);
            if (nj == H) {
                CpuRows.store(dg, 0, dgs, so, GH);
                CpuRows.store(dg, 0, dgall, go, GH);
            } else {
                for (int q = 0; q < G; q++) {
                    CpuRows.store(dg, q * H, dgs, so + (long) q * H, nj);
                    CpuRows.store(dg, q * H, dgall, go + (long) q * H, nj);
                }
            }
        });
    }

    private static void lstmProjFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), P = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), hp = a.m(6), h = a.m(7), hin = a.m(8), y = a.m(9);
        int seedLo = a.i(10), seedHi = a.i(11), layer = a.i(12), thresh = a.i(13);
        float scale = a.f(14);
        int nj = a.ext(0, P), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            if (s >= len) {
                zero(y, tbd(s, b, d, B, D, P, 0), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long sp = dbw(d, b, B, P, 0), yo = tbd(t, b, d, B, D, P, 0);
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            for (int j = 0; j < nj; j++) {
                float v = ld(hp, sp + j);
                st(h, sp + j, v);
                st(y, yo + j, v);
                if (thresh != 0) st(hin, sp + j, v * mask(prefix, b * P + j, thresh, scale));
            }
        });
    }

    private static void lstmProjBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), P = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), dy = a.m(6), dhN = a.m(7), dhrec = a.m(8), dht = a.m(9), dhtall = a.m(10);
        int seedLo = a.i(11), seedHi = a.i(12), layer = a.i(13), thresh = a.i(14);
        float scale = a.f(15);
        int nj = a.ext(0, P), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long sp = dbw(d, b, B, P, 0);
            if (s >= len) {
                zero(dht, sp, nj);
                zero(dhtall, tbd(s, b, d, B, D, P, 0), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long tp = tbd(t, b, d, B, D, P, 0);
            boolean last = s == len - 1;
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            for (int j = 0; j < nj; j++) {
                float v = (last ? ld(dhN, sp + j) : ld(dhrec, sp + j) * mask(prefix, b * P + j, thresh, scale))
                        + ld(dy, tp + j);
                st(dht, sp + j, v);
                st(dhtall, tp + j, v);
            }
        });
    }

    private static void lstmPeepholeGrad(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), H = a.i(2), D = a.i(3), G = a.i(4);
        boolean coupled = a.i(5) != 0;
        MemorySegment lengths = a.m(6), dgall = a.m(7), csave = a.m(8), c0 = a.m(9), dst = a.m(10);
        int nj = a.ext(0, H), nd = a.ext(1, D);
        int GH = G * H;
        int bf = H, bo = coupled ? 2 * H : 3 * H;
        for (int d = 0; d < nd; d++) {
            float[] si = new float[nj], sf = new float[nj], so = new float[nj];
            // The same summation order as the device kernel: b outer, t inner, per unit j.
            for (int b = 0; b < B; b++) {
                int len = len(lengths, b);
                for (int t = 0; t < len; t++) {
                    boolean first = d == 0 ? t == 0 : t == len - 1;
                    long cpo = first ? dbw(d, b, B, H, 0) : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
                    MemorySegment cpSeg = first ? c0 : csave;
                    long cno = tbd(t, b, d, B, D, H, 0);
                    long go = tbd(t, b, d, B, D, GH, 0);
                    for (int j = 0; j < nj; j++) {
                        float cp = ld(cpSeg, cpo + j), cn = ld(csave, cno + j);
                        si[j] += ld(dgall, go + j) * cp;
                        if (!coupled) sf[j] += ld(dgall, go + bf + j) * cp;
                        so[j] += ld(dgall, go + bo + j) * cn;
                    }
                }
            }
            for (int j = 0; j < nj; j++) {
                st(dst, (long) (d * 3) * H + j, si[j]);
                st(dst, (long) (d * 3 + 1) * H + j, sf[j]);
                st(dst, (long) (d * 3 + 2) * H + j, so[j]);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------
    // GRU, reset gate after the recurrent matmul (kernels/common/gru.h)

    private static void gruStepFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        boolean training = a.i(5) != 0;
        MemorySegment lengths = a.m(6), xw = a.m(7), hw = a.m(8), bih = a.m(9), bhh = a.m(10), h = a.m(11),
                hin = a.m(12), y = a.m(13), gsave = a.m(14);
        int seedLo = a.i(15), seedHi = a.i(16), layer = a.i(17), thresh = a.i(18);
        float scale = a.f(19);
        int GH = 3 * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, 3L * nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            if (s >= len) {
                zero(y, tbd(s, b, d, B, D, H, 0), nj);
                if (training) for (int q = 0; q < 4; q++) zero(gsave, tbd(s, b, d, B, D, 4 * H, q * H), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long xo = tbd(t, b, d, B, D, GH, 0), ho = dbw(d, b, B, GH, 0), bb = (long) d * GH;
            long sh = dbw(d, b, B, H, 0), yo = tbd(t, b, d, B, D, H, 0), so = tbd(t, b, d, B, D, 4 * H, 0);
            float[] pre = k.buf(th, 0, GH), tmp = k.buf(th, 1, GH), hh = k.buf(th, 2, GH), hp = k.buf(th, 3, nj);
            CpuRows.load(xw, xo, pre, 0, GH);
            CpuRows.load(bih, bb, tmp, 0, GH);
            CpuRows.add(pre, 0, tmp, 0, GH);
            CpuRows.load(hw, ho, hh, 0, GH);
            CpuRows.load(bhh, bb, tmp, 0, GH);
            CpuRows.add(hh, 0, tmp, 0, GH);
            // r and z take both projections; n takes r * (W_hn h + b_hn), hh's third block (hn, saved).
            CpuRows.add(pre, 0, hh, 0, 2 * H);
            CpuRows.sigmoid(pre, 0, 2 * H);
            CpuRows.fma(pre, 2 * H, pre, 0, hh, 2 * H, nj);
            CpuRows.tanh(pre, 2 * H, nj);
            CpuRows.load(h, sh, hp, 0, nj);
            CpuRows.gruUpdate(pre, H, 2 * H, hp, nj);
            CpuRows.store(hp, 0, h, sh, nj);
            CpuRows.store(hp, 0, y, yo, nj);
            if (training) {
                for (int q = 0; q < 3; q++) CpuRows.store(pre, q * H, gsave, so + (long) q * H, nj);
                CpuRows.store(hh, 2 * H, gsave, so + 3L * H, nj);
            }
            if (thresh != 0) {
                CpuRows.mask(hp, 0, nj, maskPrefix(seedLo, seedHi, recStream(layer, d)), b * H, thresh, scale);
                CpuRows.store(hp, 0, hin, sh, nj);
            }
        });
    }

    private static void gruStepBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), dy = a.m(6), dhN = a.m(7), dhrec = a.m(8), ddir = a.m(9), gsave = a.m(10),
                y = a.m(11), h0 = a.m(12), dgs = a.m(13), dgall = a.m(14), dgallh = a.m(15);
        int seedLo = a.i(16), seedHi = a.i(17), layer = a.i(18), thresh = a.i(19);
        float scale = a.f(20);
        int GH = 3 * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, 3L * nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long so = dbw(d, b, B, GH, 0);
            if (s >= len) {
                for (int q = 0; q < 3; q++) {
                    long ao = tbd(s, b, d, B, D, GH, q * H);
                    zero(dgs, so + (long) q * H, nj);
                    zero(dgall, ao, nj);
                    zero(dgallh, ao, nj);
                }
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            boolean last = s == len - 1;
            long sh = dbw(d, b, B, H, 0), th2 = tbd(t, b, d, B, D, H, 0), go = tbd(t, b, d, B, D, 4 * H, 0);
            boolean first = d == 0 ? t == 0 : t == len - 1;
            long hpo = first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
            long ao = tbd(t, b, d, B, D, GH, 0);
            float[] dh = k.buf(th, 0, nj), tmp = k.buf(th, 1, nj), g = k.buf(th, 2, 4 * H), hp = k.buf(th, 3, nj);
            float[] dgi = k.buf(th, 4, GH), dgh = k.buf(th, 5, GH), dd = k.buf(th, 6, nj);
            if (last) {
                CpuRows.load(dhN, sh, dh, 0, nj);
            } else {
                CpuRows.load(dhrec, sh, dh, 0, nj);
                CpuRows.mask(dh, 0, nj, maskPrefix(seedLo, seedHi, recStream(layer, d)), b * H, thresh, scale);
                CpuRows.load(ddir, sh, tmp, 0, nj);
                CpuRows.add(dh, 0, tmp, 0, nj);
            }
            CpuRows.load(dy, th2, tmp, 0, nj);
            CpuRows.add(dh, 0, tmp, 0, nj);
            CpuRows.load(gsave, go, g, 0, 4 * H);
            CpuRows.load(first ? h0 : y, hpo, hp, 0, nj);
            CpuRows.gruBackward(dh, g, hp, H, dgi, dgh, dd, nj);
            CpuRows.store(dd, 0, ddir, sh, nj);
            for (int q = 0; q < 3; q++) {
                CpuRows.store(dgh, q * H, dgs, so + (long) q * H, nj);
                CpuRows.store(dgi, q * H, dgall, ao + (long) q * H, nj);
                CpuRows.store(dgh, q * H, dgallh, ao + (long) q * H, nj);
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------
    // GRU, reset gate before the recurrent matmul (kernels/common/gru.h): two GEMMs per step around these

    private static void gruBeforeGateFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), xw = a.m(6), hw = a.m(7), bih = a.m(8), bhh = a.m(9), hsrc = a.m(10),
                rz = a.m(11), rh = a.m(12);
        int GH = 3 * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, 2L * nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long sh = dbw(d, b, B, H, 0);
            if (s >= len) {
                zero(rh, sh, nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long xo = tbd(t, b, d, B, D, GH, 0), ho = dbw(d, b, B, GH, 0), bb = (long) d * GH;
            long so = dbw(d, b, B, 2 * H, 0);
            float[] pre = k.buf(th, 0, 2 * H), tmp = k.buf(th, 1, 2 * H), hs = k.buf(th, 2, nj);
            CpuRows.load(xw, xo, pre, 0, 2 * H);
            CpuRows.load(hw, ho, tmp, 0, 2 * H);
            CpuRows.add(pre, 0, tmp, 0, 2 * H);
            CpuRows.load(bih, bb, tmp, 0, 2 * H);
            CpuRows.add(pre, 0, tmp, 0, 2 * H);
            CpuRows.load(bhh, bb, tmp, 0, 2 * H);
            CpuRows.add(pre, 0, tmp, 0, 2 * H);
            CpuRows.sigmoid(pre, 0, 2 * H);
            CpuRows.store(pre, 0, rz, so, nj);
            CpuRows.store(pre, H, rz, so + H, nj);
            CpuRows.load(hsrc, sh, hs, 0, nj);
            CpuRows.mul(hs, 0, pre, 0, nj);
            CpuRows.store(hs, 0, rh, sh, nj);
        });
    }

    private static void gruBeforeStepFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        boolean training = a.i(5) != 0;
        MemorySegment lengths = a.m(6), xw = a.m(7), hw = a.m(8), bih = a.m(9), bhh = a.m(10), rz = a.m(11),
                rh = a.m(12), h = a.m(13), hin = a.m(14), y = a.m(15), gsave = a.m(16);
        int seedLo = a.i(17), seedHi = a.i(18), layer = a.i(19), thresh = a.i(20);
        float scale = a.f(21);
        int GH = 3 * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, 2L * nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            if (s >= len) {
                zero(y, tbd(s, b, d, B, D, H, 0), nj);
                if (training) for (int q = 0; q < 4; q++) zero(gsave, tbd(s, b, d, B, D, 4 * H, q * H), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long sh = dbw(d, b, B, H, 0), so = dbw(d, b, B, 2 * H, 0);
            // Gates laid out as the saved row: r, z, n, rh.
            float[] g = k.buf(th, 0, 4 * H), tmp = k.buf(th, 1, nj), hp = k.buf(th, 2, nj);
            CpuRows.load(rz, so, g, 0, nj);
            CpuRows.load(rz, so + H, g, H, nj);
            CpuRows.load(xw, tbd(t, b, d, B, D, GH, 2 * H), g, 2 * H, nj);
            CpuRows.load(bih, (long) d * GH + 2 * H, tmp, 0, nj);
            CpuRows.add(g, 2 * H, tmp, 0, nj);
            CpuRows.load(hw, dbw(d, b, B, GH, 2 * H), tmp, 0, nj);
            CpuRows.add(g, 2 * H, tmp, 0, nj);
            CpuRows.load(bhh, (long) d * GH + 2 * H, tmp, 0, nj);
            CpuRows.add(g, 2 * H, tmp, 0, nj);
            CpuRows.tanh(g, 2 * H, nj);
            CpuRows.load(h, sh, hp, 0, nj);
            CpuRows.gruUpdate(g, H, 2 * H, hp, nj);
            CpuRows.store(hp, 0, h, sh, nj);
            CpuRows.store(hp, 0, y, tbd(t, b, d, B, D, H, 0), nj);
            if (training) {
                CpuRows.load(rh, sh, g, 3 * H, nj);
                long go = tbd(t, b, d, B, D, 4 * H, 0);
                for (int q = 0; q < 4; q++) CpuRows.store(g, q * H, gsave, go + (long) q * H, nj);
            }
            if (thresh != 0) {
                CpuRows.mask(hp, 0, nj, maskPrefix(seedLo, seedHi, recStream(layer, d)), b * H, thresh, scale);
                CpuRows.store(hp, 0, hin, sh, nj);
            }
        });
    }

    private static void gruBeforeStepBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), dy = a.m(6), dhN = a.m(7), dhrec = a.m(8), ddir = a.m(9), gsave = a.m(10),
                y = a.m(11), h0 = a.m(12), dgs = a.m(13), dgall = a.m(14);
        int seedLo = a.i(15), seedHi = a.i(16), layer = a.i(17), thresh = a.i(18);
        float scale = a.f(19);
        int GH = 3 * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, 2L * nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long so = dbw(d, b, B, GH, 0);
            if (s >= len) {
                for (int q = 0; q < 3; q++) {
                    zero(dgs, so + (long) q * H, nj);
                    zero(dgall, tbd(s, b, d, B, D, GH, q * H), nj);
                }
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            boolean last = s == len - 1;
            long sh = dbw(d, b, B, H, 0), go = tbd(t, b, d, B, D, 4 * H, 0), ao = tbd(t, b, d, B, D, GH, 0);
            boolean first = d == 0 ? t == 0 : t == len - 1;
            MemorySegment hpSeg = first ? h0 : y;
            long hpo = first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            long yo = tbd(t, b, d, B, D, H, 0);
            for (int j = 0; j < nj; j++) {
                float dh = (last ? ld(dhN, sh + j)
                        : ld(dhrec, sh + j) * mask(prefix, b * H + j, thresh, scale) + ld(ddir, sh + j))
                        + ld(dy, yo + j);
                float z = ld(gsave, go + H + j), n = ld(gsave, go + 2L * H + j);
                float hp = ld(hpSeg, hpo + j);
                float dnPre = dh * (1f - z) * (1f - n * n);
                float dzPre = dh * (hp - n) * z * (1f - z);
                st(ddir, sh + j, dh * z);
                st(dgs, so + H + j, dzPre);
                st(dgs, so + 2L * H + j, dnPre);
                st(dgall, ao + H + j, dzPre);
                st(dgall, ao + 2L * H + j, dnPre);
            }
        });
    }

    private static void gruBeforeResetBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), drh = a.m(6), gsave = a.m(7), y = a.m(8), h0 = a.m(9), dgs = a.m(10),
                dgall = a.m(11), dhrec = a.m(12);
        int seedLo = a.i(13), seedHi = a.i(14), layer = a.i(15), thresh = a.i(16);
        float scale = a.f(17);
        int GH = 3 * H;
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, (r, th) -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            long sh = dbw(d, b, B, H, 0), so = dbw(d, b, B, GH, 0);
            if (s >= len) {
                zero(dgs, so, nj);
                zero(dhrec, sh, nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long go = tbd(t, b, d, B, D, 4 * H, 0), ao = tbd(t, b, d, B, D, GH, 0);
            boolean first = d == 0 ? t == 0 : t == len - 1;
            MemorySegment hpSeg = first ? h0 : y;
            long hpo = first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            for (int j = 0; j < nj; j++) {
                float rg = ld(gsave, go + j);
                float hm = ld(hpSeg, hpo + j) * mask(prefix, b * H + j, thresh, scale);
                float g = ld(drh, sh + j);
                float drPre = g * hm * rg * (1f - rg);
                st(dgs, so + j, drPre);
                st(dgall, ao + j, drPre);
                st(dhrec, sh + j, g * rg);
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------
    // Layer normalisation of gate blocks (kernels/common/layernorm.h)

    private static void lnRowsFwd(CpuKernels k, Args a) {
        int rows = a.i(0), H = a.i(1), G = a.i(2), D = a.i(3);
        boolean training = a.i(4) != 0;
        MemorySegment v = a.m(5), gain = a.m(6), shift = a.m(7), xhat = a.m(8), rstd = a.m(9);
        int n = a.ext(0, rows);
        k.rows(n, 3L * H, (row, th) -> {
            int g = row % G, d = (row / G) % D;
            long go = (long) d * G * H + (long) g * H, vo = (long) row * H;
            float[] x = k.buf(th, 0, H), gn = k.buf(th, 1, H), sf = k.buf(th, 2, H), xh = k.buf(th, 3, H);
            CpuRows.load(v, vo, x, 0, H);
            CpuRows.load(gain, go, gn, 0, H);
            CpuRows.load(shift, go, sf, 0, H);
            float r = CpuRows.lnForward(x, H, gn, sf, training ? xh : null);
            CpuRows.store(x, 0, v, vo, H);
            if (training) {
                CpuRows.store(xh, 0, xhat, vo, H);
                st(rstd, row, r);
            }
        });
    }

    private static void lnRowsBwd(CpuKernels k, Args a) {
        int rows = a.i(0), H = a.i(1), G = a.i(2), D = a.i(3);
        MemorySegment da = a.m(4), gain = a.m(5), xhat = a.m(6), rstd = a.m(7), dv = a.m(8);
        int n = a.ext(0, rows);
        k.rows(n, 3L * H, (row, th) -> {
            int g = row % G, d = (row / G) % D;
            long go = (long) d * G * H + (long) g * H, vo = (long) row * H;
            float[] x = k.buf(th, 0, H), gn = k.buf(th, 1, H), xh = k.buf(th, 2, H);
            CpuRows.load(da, vo, x, 0, H);
            CpuRows.load(gain, go, gn, 0, H);
            CpuRows.load(xhat, vo, xh, 0, H);
            CpuRows.lnBackward(x, H, gn, xh, ld(rstd, row), x);
            CpuRows.store(x, 0, dv, vo, H);
        });
    }

    private static void lnStepFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4), G = a.i(5), g0 = a.i(6), nblk = a.i(7);
        boolean training = a.i(8) != 0;
        MemorySegment lengths = a.m(9), v = a.m(10), gain = a.m(11), shift = a.m(12), xhat = a.m(13), rstd = a.m(14);
        int GH = G * H;
        int ng = a.ext(0, nblk), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb * ng, 3L * H, (r, th) -> {
            int gi = r % ng, b = (r / ng) % nb, d = r / (ng * nb);
            int g = g0 + gi;
            int len = len(lengths, b);
            if (s >= len) {
                if (training) {
                    zero(xhat, tbd(s, b, d, B, D, GH, g * H), H);
                    st(rstd, tbd(s, b, d, B, D, G, g), 0f);
                }
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long vo = dbw(d, b, B, GH, g * H), go = (long) d * GH + (long) g * H;
            float[] x = k.buf(th, 0, H), gn = k.buf(th, 1, H), sf = k.buf(th, 2, H), xh = k.buf(th, 3, H);
            CpuRows.load(v, vo, x, 0, H);
            CpuRows.load(gain, go, gn, 0, H);
            CpuRows.load(shift, go, sf, 0, H);
            float rs = CpuRows.lnForward(x, H, gn, sf, training ? xh : null);
            CpuRows.store(x, 0, v, vo, H);
            if (training) {
                CpuRows.store(xh, 0, xhat, tbd(t, b, d, B, D, GH, g * H), H);
                st(rstd, tbd(t, b, d, B, D, G, g), rs);
            }
        });
    }

    private static void lnStepBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4), G = a.i(5), g0 = a.i(6), nblk = a.i(7);
        MemorySegment lengths = a.m(8), dg = a.m(9), gain = a.m(10), xhat = a.m(11), rstd = a.m(12), dvall = a.m(13);
        int GH = G * H;
        int ng = a.ext(0, nblk), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb * ng, 3L * H, (r, th) -> {
            int gi = r % ng, b = (r / ng) % nb, d = r / (ng * nb);
            int g = g0 + gi;
            int len = len(lengths, b);
            if (s >= len) {
                zero(dvall, tbd(s, b, d, B, D, GH, g * H), H);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long ro = dbw(d, b, B, GH, g * H), to = tbd(t, b, d, B, D, GH, g * H), go = (long) d * GH + (long) g * H;
            float[] x = k.buf(th, 0, H), gn = k.buf(th, 1, H), xh = k.buf(th, 2, H);
            CpuRows.load(dg, ro, x, 0, H);
            CpuRows.load(gain, go, gn, 0, H);
            CpuRows.load(xhat, to, xh, 0, H);
            CpuRows.lnBackward(x, H, gn, xh, ld(rstd, tbd(t, b, d, B, D, G, g)), x);
            CpuRows.store(x, 0, dg, ro, H);
            CpuRows.store(x, 0, dvall, to, H);
        });
    }

    // ------------------------------------------------------------------------------------------------------
    // Layer-level kernels (kernels/common/layer.h)

    private static void rnnDh0(CpuKernels k, Args a) {
        int B = a.i(0), P = a.i(1), D = a.i(2);
        boolean hasDdir = a.i(3) != 0;
        MemorySegment dhrec = a.m(4), ddir = a.m(5), dh0 = a.m(6);
        int seedLo = a.i(7), seedHi = a.i(8), layer = a.i(9), thresh = a.i(10);
        float scale = a.f(11);
        int nj = a.ext(0, P), nb = a.ext(1, B), nd = a.ext(2, D);
        for (int d = 0; d < nd; d++) {
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            for (int b = 0; b < nb; b++) {
                long o = dbw(d, b, B, P, 0);
                for (int j = 0; j < nj; j++) {
                    float v = ld(dhrec, o + j) * mask(prefix, b * P + j, thresh, scale);
                    if (hasDdir) v += ld(ddir, o + j);
                    st(dh0, o + j, v);
                }
            }
        }
    }

    private static void maskState(CpuKernels k, Args a) {
        int B = a.i(0), P = a.i(1), D = a.i(2);
        MemorySegment src = a.m(3), dst = a.m(4);
        int seedLo = a.i(5), seedHi = a.i(6), layer = a.i(7), thresh = a.i(8);
        float scale = a.f(9);
        int nj = a.ext(0, P), nb = a.ext(1, B), nd = a.ext(2, D);
        for (int d = 0; d < nd; d++) {
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            for (int b = 0; b < nb; b++) {
                long o = dbw(d, b, B, P, 0);
                for (int j = 0; j < nj; j++) st(dst, o + j, ld(src, o + j) * mask(prefix, b * P + j, thresh, scale));
            }
        }
    }

    private static void gatherHprev(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), P = a.i(2), D = a.i(3);
        MemorySegment lengths = a.m(4), y = a.m(5), h0 = a.m(6), dst = a.m(7);
        int seedLo = a.i(8), seedHi = a.i(9), layer = a.i(10), thresh = a.i(11);
        float scale = a.f(12);
        int nj = a.ext(0, P), nb = a.ext(1, B), ntd = a.ext(2, (long) T * D);
        k.rows(ntd * nb, nj, (r, th) -> {
            int td = r / nb, b = r % nb;
            int t = td / D, d = td - t * D;
            int len = len(lengths, b);
            long o = tbd(t, b, d, B, D, P, 0);
            if (t >= len) {
                zero(dst, o, nj);
                return;
            }
            boolean first = d == 0 ? t == 0 : t == len - 1;
            MemorySegment src = first ? h0 : y;
            long so = first ? dbw(d, b, B, P, 0) : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, P, 0);
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            if (thresh == 0) {
                MemorySegment.copy(src, so * Float.BYTES, dst, o * Float.BYTES, (long) nj * Float.BYTES);
            } else {
                for (int j = 0; j < nj; j++) st(dst, o + j, ld(src, so + j) * mask(prefix, b * P + j, thresh, scale));
            }
        });
    }

    private static void inputDropoutFwd(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), In = a.i(2), D = a.i(3);
        MemorySegment x = a.m(4), dst = a.m(5);
        int seedLo = a.i(6), seedHi = a.i(7), layer = a.i(8), thresh = a.i(9);
        float scale = a.f(10);
        int nj = a.ext(0, In), nb = a.ext(1, B), ntd = a.ext(2, (long) T * D);
        k.rows(ntd * nb, nj, (r, th) -> {
            int td = r / nb, b = r % nb;
            int t = td / D, d = td - t * D;
            long xo = (long) (t * B + b) * In;
            long dOff = (long) d * T * B * In + xo;
            int prefix = maskPrefix(seedLo, seedHi, DropoutMask.stream(layer, d, DropoutMask.INPUT));
            for (int j = 0; j < nj; j++) st(dst, dOff + j, ld(x, xo + j) * mask(prefix, b * In + j, thresh, scale));
        });
    }

    private static void inputDropoutBwd(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), In = a.i(2), D = a.i(3);
        MemorySegment dxd = a.m(4), dx = a.m(5);
        int seedLo = a.i(6), seedHi = a.i(7), layer = a.i(8), thresh = a.i(9);
        float scale = a.f(10);
        int nj = a.ext(0, In), nb = a.ext(1, B), nt = a.ext(2, T);
        int[] prefix = new int[D];
        for (int d = 0; d < D; d++) prefix[d] = maskPrefix(seedLo, seedHi, DropoutMask.stream(layer, d, DropoutMask.INPUT));
        k.rows(nt * nb, (long) nj * D, (r, th) -> {
            int t = r / nb, b = r % nb;
            long xo = (long) (t * B + b) * In;
            for (int j = 0; j < nj; j++) {
                float v = 0f;
                for (int d = 0; d < D; d++) {
                    v += ld(dxd, (long) d * T * B * In + xo + j) * mask(prefix[d], b * In + j, thresh, scale);
                }
                st(dx, xo + j, v);
            }
        });
    }

    private static void mergeFwd(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), P = a.i(2), D = a.i(3), W = a.i(4), mode = a.i(5);
        boolean residual = a.i(6) != 0;
        MemorySegment lengths = a.m(7), y = a.m(8), in = a.m(9), dst = a.m(10);
        int seedLo = a.i(11), seedHi = a.i(12), layer = a.i(13), thresh = a.i(14);
        float scale = a.f(15);
        int nj = a.ext(0, W), nb = a.ext(1, B), nt = a.ext(2, T);
        int prefix = maskPrefix(seedLo, seedHi, DropoutMask.stream(layer, 0, DropoutMask.BETWEEN_LAYERS));
        k.rows(nt * nb, nj, (r, th) -> {
            int t = r / nb, b = r % nb;
            long o = (long) (t * B + b) * W;
            if (t >= len(lengths, b)) {
                zero(dst, o, nj);
                return;
            }
            boolean single = D == 1 || mode == 0;
            long y0 = tbd(t, b, 0, B, 2, P, 0), y1 = tbd(t, b, 1, B, 2, P, 0);
            for (int j = 0; j < nj; j++) {
                float v;
                if (single) {
                    v = ld(y, o + j);
                } else {
                    float a0 = ld(y, y0 + j), a1 = ld(y, y1 + j);
                    v = mode == 1 ? a0 + a1 : mode == 2 ? (a0 + a1) * 0.5f : a0 * a1;
                }
                if (residual) v += ld(in, o + j);
                st(dst, o + j, v * mask(prefix, (int) (o + j), thresh, scale));
            }
        });
    }

    private static void mergeBwd(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), P = a.i(2), D = a.i(3), W = a.i(4), mode = a.i(5);
        MemorySegment lengths = a.m(6), dout = a.m(7), y = a.m(8), dy = a.m(9);
        int nj = a.ext(0, P), nb = a.ext(1, B), ntd = a.ext(2, (long) T * D);
        k.rows(ntd * nb, nj, (r, th) -> {
            int td = r / nb, b = r % nb;
            int t = td / D, d = td - t * D;
            long o = tbd(t, b, d, B, D, P, 0);
            if (t >= len(lengths, b)) {
                zero(dy, o, nj);
                return;
            }
            boolean single = D == 1 || mode == 0;
            long g = (long) (t * B + b) * W, other = tbd(t, b, 1 - d, B, 2, P, 0);
            for (int j = 0; j < nj; j++) {
                float v;
                if (single) {
                    v = ld(dout, o + j);
                } else {
                    float gv = ld(dout, g + j);
                    v = mode == 1 ? gv : mode == 2 ? 0.5f * gv : gv * ld(y, other + j);
                }
                st(dy, o + j, v);
            }
        });
    }

    private static void layerInputBwd(CpuKernels k, Args a) {
        int T = a.i(0), B = a.i(1), W = a.i(2);
        boolean residual = a.i(3) != 0;
        MemorySegment lengths = a.m(4), dx = a.m(5), dout = a.m(6), dst = a.m(7);
        int seedLo = a.i(8), seedHi = a.i(9), layer = a.i(10), thresh = a.i(11);
        float scale = a.f(12);
        int nj = a.ext(0, W), nb = a.ext(1, B), nt = a.ext(2, T);
        int prefix = maskPrefix(seedLo, seedHi, DropoutMask.stream(layer, 0, DropoutMask.BETWEEN_LAYERS));
        k.rows(nt * nb, nj, (r, th) -> {
            int t = r / nb, b = r % nb;
            long o = (long) (t * B + b) * W;
            boolean add = residual && t < len(lengths, b);
            for (int j = 0; j < nj; j++) {
                float v = ld(dx, o + j);
                if (add) v += ld(dout, o + j);
                st(dst, o + j, v * mask(prefix, (int) (o + j), thresh, scale));
            }
        });
    }

    private static void colSum(CpuKernels k, Args a) {
        int M = a.i(0), N = a.i(1);
        MemorySegment src = a.m(2), dst = a.m(3);
        float beta = a.f(4);
        int nj = a.ext(0, N);
        // Column chunks over the pool; inside a chunk, rows are added in order (the device kernel's order per
        // column) with vectors across the columns.
        int chunk = Math.max(4 * L, (nj + 4 * k.pool.threads() - 1) / (4 * k.pool.threads()) / L * L);
        int chunks = (nj + chunk - 1) / chunk;
        k.rows(chunks, (long) M * chunk, (c, th) -> {
            int j0 = c * chunk, j1 = Math.min(nj, j0 + chunk);
            float[] acc = new float[j1 - j0];
            int w = j1 - j0, wv = w - w % L;
            for (int i = 0; i < M; i++) {
                long row = (long) i * N + j0;
                for (int j = 0; j < wv; j += L) FloatVector.fromArray(S, acc, j).add(vld(src, row + j)).intoArray(acc, j);
                for (int j = wv; j < w; j++) acc[j] += ld(src, row + j);
            }
            for (int j = 0; j < w; j++) st(dst, j0 + j, (beta == 0f ? 0f : beta * ld(dst, j0 + j)) + acc[j]);
        });
    }

    private static void colDot(CpuKernels k, Args a) {
        int M = a.i(0), N = a.i(1);
        MemorySegment x = a.m(2), y = a.m(3), dst = a.m(4);
        float beta = a.f(5);
        int nj = a.ext(0, N);
        int chunk = Math.max(4 * L, (nj + 4 * k.pool.threads() - 1) / (4 * k.pool.threads()) / L * L);
        int chunks = (nj + chunk - 1) / chunk;
        k.rows(chunks, (long) M * chunk, (c, th) -> {
            int j0 = c * chunk, j1 = Math.min(nj, j0 + chunk);
            float[] acc = new float[j1 - j0];
            int w = j1 - j0, wv = w - w % L;
            for (int i = 0; i < M; i++) {
                long row = (long) i * N + j0;
                for (int j = 0; j < wv; j += L) {
                    vld(x, row + j).fma(vld(y, row + j), FloatVector.fromArray(S, acc, j)).intoArray(acc, j);
                }
                for (int j = wv; j < w; j++) acc[j] += ld(x, row + j) * ld(y, row + j);
            }
            for (int j = 0; j < w; j++) st(dst, j0 + j, (beta == 0f ? 0f : beta * ld(dst, j0 + j)) + acc[j]);
        });
    }
}
