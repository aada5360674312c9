package dev.recur.backend.cpu;

import dev.recur.nn.DropoutMask;
import dev.recur.schedule.Kernels;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
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
 * time: the per-step cell kernels vectorise along the hidden units with {@link CpuMath}'s exp/sigmoid/tanh and
 * hand rows to the backend's thread pool when a launch is large enough to pay for it; loop tails and the
 * small layer-level kernels run the same formulas on scalars.
 *
 * <p>Like the device kernels, a launch covers the work items inside both its grid and the extents given as
 * arguments; anything indexed outside a buffer throws {@link IndexOutOfBoundsException} instead of
 * corrupting memory.
 */
final class CpuKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final int[] IOTA = new int[L];

    static {
        for (int i = 0; i < L; i++) IOTA[i] = i;
    }

    /** Below this many elements a launch runs on the calling thread (a hand-off costs a few microseconds). */
    static final long PARALLEL_MIN_ELEMENTS = 16_384;

    /** A parameter: its name, and its kind: 'i' int, 'f' float, 'F' F32 buffer, 'I' I32 buffer. */
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

        Args(long[] grid, int n) {
            this.grid = grid;
            this.ints = new int[n];
            this.floats = new float[n];
            this.segs = new MemorySegment[n];
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

    CpuKernels(CpuPool pool, long parallelMinElements) {
        this.pool = pool;
        this.parallelMinElements = parallelMinElements;
    }

    // ------------------------------------------------------------------------------------------------------
    // Helpers

    @FunctionalInterface
    private interface Row {
        void run(int row);
    }

    /** Runs rows [0, n) of {@code width} elements each, over the pool when the launch is large. */
    private void rows(int n, long width, Row body) {
        if (n <= 0) return;
        if (pool.threads() > 1 && n > 1 && (long) n * width >= parallelMinElements) {
            int tasks = Math.min(n, 4 * pool.threads());
            int per = (n + tasks - 1) / tasks;
            pool.run(tasks, (t, th) -> {
                int r1 = Math.min(n, (t + 1) * per);
                for (int r = t * per; r < r1; r++) body.run(r);
            });
        } else {
            for (int r = 0; r < n; r++) body.run(r);
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

    private static void vst(MemorySegment s, long i, FloatVector v) {
        v.intoMemorySegment(s, i * Float.BYTES, NATIVE);
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

    /** The part of a dropout hash that depends only on seed and stream (see {@link DropoutMask#bits}). */
    static int maskPrefix(int seedLo, int seedHi, int stream) {
        int h = DropoutMask.mix(seedLo ^ DropoutMask.mix(seedHi));
        return DropoutMask.mix(h ^ stream);
    }

    static float mask(int prefix, int index, int thresh, float scale) {
        if (thresh == 0) return 1f;
        return (DropoutMask.mix(prefix ^ index) >>> 8) >= thresh ? scale : 0f;
    }

    /** Masks of indexes {@code index0 .. index0+L-1}; only called with {@code thresh != 0}. */
    static FloatVector maskVec(int prefix, int index0, int thresh, float scale) {
        IntVector x = IntVector.fromArray(SI, IOTA, 0).add(index0).lanewise(VectorOperators.XOR, prefix);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 16)).mul(0x7feb352d);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 15)).mul(0x846ca68b);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 16));
        var keep = x.lanewise(VectorOperators.LSHR, 8).compare(VectorOperators.GE, thresh).cast(S);
        return FloatVector.zero(S).blend(scale, keep);
    }

    private static int recStream(int layer, int d) {
        return DropoutMask.stream(layer, d, DropoutMask.RECURRENT);
    }

    // ------------------------------------------------------------------------------------------------------
    // Plain RNN (kernels/common/rnn.h)

    private static void rnnStepFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4), act = a.i(5);
        MemorySegment lengths = a.m(6), xw = a.m(7), hw = a.m(8), bih = a.m(9), bhh = a.m(10), h = a.m(11), y = a.m(12);
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, r -> {
            int d = r / nb, b = r % nb;
            int len = len(lengths, b);
            if (s >= len) {
                zero(y, tbd(s, b, d, B, D, H, 0), nj);
                return;
            }
            int t = d == 0 ? s : len - 1 - s;
            long xo = tbd(t, b, d, B, D, H, 0), ho = dbw(d, b, B, H, 0), bo = (long) d * H;
            int j = 0;
            for (; j <= nj - L; j += L) {
                FloatVector pre = vld(xw, xo + j).add(vld(hw, ho + j)).add(vld(bih, bo + j)).add(vld(bhh, bo + j));
                FloatVector v = act == 0 ? CpuMath.tanh(pre) : pre.max(0f);
                vst(h, ho + j, v);
                vst(y, xo + j, v);
            }
            for (; j < nj; j++) {
                float pre = ld(xw, xo + j) + ld(hw, ho + j) + ld(bih, bo + j) + ld(bhh, bo + j);
                float v = act == 0 ? CpuMath.tanh(pre) : (pre > 0f ? pre : 0f);
                st(h, ho + j, v);
                st(y, xo + j, v);
            }
        });
    }

    private static void rnnStepBwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), H = a.i(3), D = a.i(4), act = a.i(5);
        MemorySegment lengths = a.m(6), dy = a.m(7), dhN = a.m(8), dhrec = a.m(9), y = a.m(10), dgs = a.m(11),
                dgall = a.m(12);
        int nj = a.ext(0, H), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, r -> {
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
            MemorySegment dhIn = s == len - 1 ? dhN : dhrec;
            int j = 0;
            for (; j <= nj - L; j += L) {
                FloatVector dh = vld(dhIn, sd + j).add(vld(dy, td + j));
                FloatVector v = vld(y, td + j);
                FloatVector dpre = act == 0 ? dh.mul(v.mul(v).neg().add(1f))
                        : FloatVector.zero(S).blend(dh, v.compare(VectorOperators.GT, 0f));
                vst(dgs, sd + j, dpre);
                vst(dgall, td + j, dpre);
            }
            for (; j < nj; j++) {
                float dh = ld(dhIn, sd + j) + ld(dy, td + j);
                float v = ld(y, td + j);
                float dpre = act == 0 ? dh * (1f - v * v) : (v > 0f ? dh : 0f);
                st(dgs, sd + j, dpre);
                st(dgall, td + j, dpre);
            }
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
        k.rows(nd * nb, (long) nj * G, r -> {
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
            long pi = (long) (d * 3) * H, pf = pi + H, po = pf + H;
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            int j = 0;
            for (; j <= nj - L; j += L) {
                FloatVector cp = vld(c, ch + j);
                FloatVector preI = vld(xw, xo + bi + j).add(vld(hw, ho + bi + j)).add(vld(bih, bb + bi + j)).add(vld(bhh, bb + bi + j));
                FloatVector preG = vld(xw, xo + bg + j).add(vld(hw, ho + bg + j)).add(vld(bih, bb + bg + j)).add(vld(bhh, bb + bg + j));
                FloatVector preO = vld(xw, xo + bo + j).add(vld(hw, ho + bo + j)).add(vld(bih, bb + bo + j)).add(vld(bhh, bb + bo + j));
                if (peep) preI = vld(peepw, pi + j).fma(cp, preI);
                FloatVector ig = CpuMath.sigmoid(preI);
                FloatVector fg;
                if (coupled) {
                    fg = ig.neg().add(1f);
                } else {
                    FloatVector preF = vld(xw, xo + bf + j).add(vld(hw, ho + bf + j)).add(vld(bih, bb + bf + j)).add(vld(bhh, bb + bf + j));
                    if (peep) preF = vld(peepw, pf + j).fma(cp, preF);
                    fg = CpuMath.sigmoid(preF);
                }
                FloatVector gg = CpuMath.tanh(preG);
                FloatVector cn = fg.fma(cp, ig.mul(gg));
                if (peep) preO = vld(peepw, po + j).fma(cn, preO);
                FloatVector og = CpuMath.sigmoid(preO);
                FloatVector m = og.mul(CpuMath.tanh(cn));
                vst(c, ch + j, cn);
                if (training) {
                    vst(gsave, xo + bi + j, ig);
                    if (!coupled) vst(gsave, xo + bf + j, fg);
                    vst(gsave, xo + bg + j, gg);
                    vst(gsave, xo + bo + j, og);
                    vst(csave, cs + j, cn);
                }
                if (proj) {
                    vst(mout, ch + j, m);
                    if (training) vst(msave, cs + j, m);
                } else {
                    vst(h, hh + j, m);
                    vst(y, yo + j, m);
                    if (thresh != 0) vst(hin, hh + j, m.mul(maskVec(prefix, b * H + j, thresh, scale)));
                }
            }
            for (; j < nj; j++) {
                float cp = ld(c, ch + j);
                float wci = peep ? ld(peepw, pi + j) : 0f, wcf = peep ? ld(peepw, pf + j) : 0f;
                float wco = peep ? ld(peepw, po + j) : 0f;
                float ig = CpuMath.sigmoid(ld(xw, xo + bi + j) + ld(hw, ho + bi + j) + ld(bih, bb + bi + j)
                        + ld(bhh, bb + bi + j) + wci * cp);
                float fg = coupled ? 1f - ig : CpuMath.sigmoid(ld(xw, xo + bf + j) + ld(hw, ho + bf + j)
                        + ld(bih, bb + bf + j) + ld(bhh, bb + bf + j) + wcf * cp);
                float gg = CpuMath.tanh(ld(xw, xo + bg + j) + ld(hw, ho + bg + j) + ld(bih, bb + bg + j) + ld(bhh, bb + bg + j));
                float cn = fg * cp + ig * gg;
                float og = CpuMath.sigmoid(ld(xw, xo + bo + j) + ld(hw, ho + bo + j) + ld(bih, bb + bo + j)
                        + ld(bhh, bb + bo + j) + wco * cn);
                float m = og * CpuMath.tanh(cn);
                st(c, ch + j, cn);
                if (training) {
                    st(gsave, xo + bi + j, ig);
                    if (!coupled) st(gsave, xo + bf + j, fg);
                    st(gsave, xo + bg + j, gg);
                    st(gsave, xo + bo + j, og);
                    st(csave, cs + j, cn);
                }
                if (proj) {
                    st(mout, ch + j, m);
                    if (training) st(msave, cs + j, m);
                } else {
                    st(h, hh + j, m);
                    st(y, yo + j, m);
                    if (thresh != 0) st(hin, hh + j, m * mask(prefix, b * H + j, thresh, scale));
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
        int bi = 0, bf = H, bg = coupled ? H : 2 * H, bo = coupled ? 2 * H : 3 * H;
        k.rows(nd * nb, (long) nj * G, r -> {
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
            MemorySegment cpSeg = first ? c0 : csave;
            long cpo = first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
            long cno = tbd(t, b, d, B, D, H, 0);
            long go = tbd(t, b, d, B, D, GH, 0);
            MemorySegment dcIn = last ? dcN : dc;
            long pi = (long) (d * 3) * H, pf = pi + H, po = pf + H;
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            boolean masked = !proj && !last && thresh != 0;
            int j = 0;
            for (; j <= nj - L; j += L) {
                FloatVector dh;
                if (proj) {
                    dh = vld(dm, sh + j);
                } else {
                    dh = last ? vld(dhN, sp + j) : vld(dhrec, sp + j);
                    if (masked) dh = dh.mul(maskVec(prefix, b * P + j, thresh, scale));
                    dh = dh.add(vld(dy, yo + j));
                }
                FloatVector dcin = vld(dcIn, sh + j);
                FloatVector cp = vld(cpSeg, cpo + j);
                FloatVector cn = vld(csave, cno + j);
                FloatVector ig = vld(gsave, go + bi + j);
                FloatVector fg = coupled ? ig.neg().add(1f) : vld(gsave, go + bf + j);
                FloatVector gg = vld(gsave, go + bg + j);
                FloatVector og = vld(gsave, go + bo + j);
                FloatVector tc = CpuMath.tanh(cn);
                FloatVector doPre = dh.mul(tc).mul(og).mul(og.neg().add(1f));
                FloatVector dcn = dcin.add(dh.mul(og).mul(tc.mul(tc).neg().add(1f)));
                if (peep) dcn = vld(peepw, po + j).fma(doPre, dcn);
                FloatVector di = coupled ? dcn.mul(gg.sub(cp)) : dcn.mul(gg);
                FloatVector diPre = di.mul(ig).mul(ig.neg().add(1f));
                FloatVector dgPre = dcn.mul(ig).mul(gg.mul(gg).neg().add(1f));
                FloatVector dcPrev = dcn.mul(fg);
                if (!coupled) {
                    FloatVector dfPre = dcn.mul(cp).mul(fg).mul(fg.neg().add(1f));
                    if (peep) dcPrev = vld(peepw, pf + j).fma(dfPre, dcPrev);
                    vst(dgs, so + bf + j, dfPre);
                    vst(dgall, go + bf + j, dfPre);
                }
                if (peep) dcPrev = vld(peepw, pi + j).fma(diPre, dcPrev);
                vst(dc, sh + j, dcPrev);
                vst(dgs, so + bi + j, diPre);
                vst(dgall, go + bi + j, diPre);
                vst(dgs, so + bg + j, dgPre);
                vst(dgall, go + bg + j, dgPre);
                vst(dgs, so + bo + j, doPre);
                vst(dgall, go + bo + j, doPre);
            }
            for (; j < nj; j++) {
                float dh;
                if (proj) {
                    dh = ld(dm, sh + j);
                } else {
                    dh = last ? ld(dhN, sp + j) : ld(dhrec, sp + j) * mask(prefix, b * P + j, thresh, scale);
                    dh += ld(dy, yo + j);
                }
                float dcin = ld(dcIn, sh + j);
                float cp = ld(cpSeg, cpo + j);
                float cn = ld(csave, cno + j);
                float ig = ld(gsave, go + bi + j);
                float fg = coupled ? 1f - ig : ld(gsave, go + bf + j);
                float gg = ld(gsave, go + bg + j);
                float og = ld(gsave, go + bo + j);
                float wci = peep ? ld(peepw, pi + j) : 0f, wcf = peep ? ld(peepw, pf + j) : 0f;
                float wco = peep ? ld(peepw, po + j) : 0f;
                float tc = CpuMath.tanh(cn);
                float doPre = dh * tc * og * (1f - og);
                float dcn = dcin + dh * og * (1f - tc * tc) + wco * doPre;
                float di = coupled ? dcn * (gg - cp) : dcn * gg;
                float diPre = di * ig * (1f - ig);
                float dfPre = coupled ? 0f : dcn * cp * fg * (1f - fg);
                float dgPre = dcn * ig * (1f - gg * gg);
                st(dc, sh + j, dcn * fg + wci * diPre + wcf * dfPre);
                st(dgs, so + bi + j, diPre);
                st(dgall, go + bi + j, diPre);
                if (!coupled) {
                    st(dgs, so + bf + j, dfPre);
                    st(dgall, go + bf + j, dfPre);
                }
                st(dgs, so + bg + j, dgPre);
                st(dgall, go + bg + j, dgPre);
                st(dgs, so + bo + j, doPre);
                st(dgall, go + bo + j, doPre);
            }
        });
    }

    private static void lstmProjFwd(CpuKernels k, Args a) {
        int s = a.i(0), B = a.i(2), P = a.i(3), D = a.i(4);
        MemorySegment lengths = a.m(5), hp = a.m(6), h = a.m(7), hin = a.m(8), y = a.m(9);
        int seedLo = a.i(10), seedHi = a.i(11), layer = a.i(12), thresh = a.i(13);
        float scale = a.f(14);
        int nj = a.ext(0, P), nb = a.ext(1, B), nd = a.ext(2, D);
        k.rows(nd * nb, nj, r -> {
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
        k.rows(nd * nb, nj, r -> {
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
        k.rows(nd * nb, 3L * nj, r -> {
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
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            int j = 0;
            for (; j <= nj - L; j += L) {
                FloatVector rg = CpuMath.sigmoid(vld(xw, xo + j).add(vld(hw, ho + j)).add(vld(bih, bb + j)).add(vld(bhh, bb + j)));
                FloatVector zg = CpuMath.sigmoid(vld(xw, xo + H + j).add(vld(hw, ho + H + j)).add(vld(bih, bb + H + j))
                        .add(vld(bhh, bb + H + j)));
                FloatVector hn = vld(hw, ho + 2 * H + j).add(vld(bhh, bb + 2 * H + j));
                FloatVector n = CpuMath.tanh(rg.fma(hn, vld(xw, xo + 2 * H + j).add(vld(bih, bb + 2 * H + j))));
                FloatVector hp = vld(h, sh + j);
                // (1-z)*n + z*h_{t-1} = n + z*(h_{t-1} - n)
                FloatVector v = zg.fma(hp.sub(n), n);
                vst(h, sh + j, v);
                vst(y, yo + j, v);
                if (thresh != 0) vst(hin, sh + j, v.mul(maskVec(prefix, b * H + j, thresh, scale)));
                if (training) {
                    vst(gsave, so + j, rg);
                    vst(gsave, so + H + j, zg);
                    vst(gsave, so + 2 * H + j, n);
                    vst(gsave, so + 3 * H + j, hn);
                }
            }
            for (; j < nj; j++) {
                float rg = CpuMath.sigmoid(ld(xw, xo + j) + ld(hw, ho + j) + ld(bih, bb + j) + ld(bhh, bb + j));
                float zg = CpuMath.sigmoid(ld(xw, xo + H + j) + ld(hw, ho + H + j) + ld(bih, bb + H + j) + ld(bhh, bb + H + j));
                float hn = ld(hw, ho + 2 * H + j) + ld(bhh, bb + 2 * H + j);
                float n = CpuMath.tanh(ld(xw, xo + 2 * H + j) + ld(bih, bb + 2 * H + j) + rg * hn);
                float hp = ld(h, sh + j);
                float v = (1f - zg) * n + zg * hp;
                st(h, sh + j, v);
                st(y, yo + j, v);
                if (thresh != 0) st(hin, sh + j, v * mask(prefix, b * H + j, thresh, scale));
                if (training) {
                    st(gsave, so + j, rg);
                    st(gsave, so + H + j, zg);
                    st(gsave, so + 2 * H + j, n);
                    st(gsave, so + 3 * H + j, hn);
                }
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
        k.rows(nd * nb, 3L * nj, r -> {
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
            long sh = dbw(d, b, B, H, 0), th = tbd(t, b, d, B, D, H, 0), go = tbd(t, b, d, B, D, 4 * H, 0);
            boolean first = d == 0 ? t == 0 : t == len - 1;
            MemorySegment hpSeg = first ? h0 : y;
            long hpo = first ? sh : tbd(d == 0 ? t - 1 : t + 1, b, d, B, D, H, 0);
            long ao = tbd(t, b, d, B, D, GH, 0);
            int prefix = maskPrefix(seedLo, seedHi, recStream(layer, d));
            int j = 0;
            for (; j <= nj - L; j += L) {
                FloatVector dh;
                if (last) {
                    dh = vld(dhN, sh + j);
                } else {
                    dh = vld(dhrec, sh + j);
                    if (thresh != 0) dh = dh.mul(maskVec(prefix, b * H + j, thresh, scale));
                    dh = dh.add(vld(ddir, sh + j));
                }
                dh = dh.add(vld(dy, th + j));
                FloatVector rg = vld(gsave, go + j), zg = vld(gsave, go + H + j);
                FloatVector n = vld(gsave, go + 2 * H + j), hn = vld(gsave, go + 3 * H + j);
                FloatVector hp = vld(hpSeg, hpo + j);
                FloatVector dnPre = dh.mul(zg.neg().add(1f)).mul(n.mul(n).neg().add(1f));
                FloatVector dzPre = dh.mul(hp.sub(n)).mul(zg).mul(zg.neg().add(1f));
                FloatVector drPre = dnPre.mul(hn).mul(rg).mul(rg.neg().add(1f));
                FloatVector dnr = dnPre.mul(rg);
                vst(ddir, sh + j, dh.mul(zg));
                vst(dgs, so + j, drPre);
                vst(dgs, so + H + j, dzPre);
                vst(dgs, so + 2 * H + j, dnr);
                vst(dgall, ao + j, drPre);
                vst(dgall, ao + H + j, dzPre);
                vst(dgall, ao + 2 * H + j, dnPre);
                vst(dgallh, ao + j, drPre);
                vst(dgallh, ao + H + j, dzPre);
                vst(dgallh, ao + 2 * H + j, dnr);
            }
            for (; j < nj; j++) {
                float dh = (last ? ld(dhN, sh + j)
                        : ld(dhrec, sh + j) * mask(prefix, b * H + j, thresh, scale) + ld(ddir, sh + j))
                        + ld(dy, th + j);
                float rg = ld(gsave, go + j), zg = ld(gsave, go + H + j);
                float n = ld(gsave, go + 2 * H + j), hn = ld(gsave, go + 3 * H + j);
                float hp = ld(hpSeg, hpo + j);
                float dnPre = dh * (1f - zg) * (1f - n * n);
                float dzPre = dh * (hp - n) * zg * (1f - zg);
                float drPre = dnPre * hn * rg * (1f - rg);
                st(ddir, sh + j, dh * zg);
                st(dgs, so + j, drPre);
                st(dgs, so + H + j, dzPre);
                st(dgs, so + 2 * H + j, dnPre * rg);
                st(dgall, ao + j, drPre);
                st(dgall, ao + H + j, dzPre);
                st(dgall, ao + 2 * H + j, dnPre);
                st(dgallh, ao + j, drPre);
                st(dgallh, ao + H + j, dzPre);
                st(dgallh, ao + 2 * H + j, dnPre * rg);
            }
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
        k.rows(ntd * nb, nj, r -> {
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
        k.rows(ntd * nb, nj, r -> {
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
        k.rows(nt * nb, (long) nj * D, r -> {
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
        k.rows(nt * nb, nj, r -> {
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
        k.rows(ntd * nb, nj, r -> {
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
        k.rows(nt * nb, nj, r -> {
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
        k.rows(chunks, (long) M * chunk, c -> {
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
}
