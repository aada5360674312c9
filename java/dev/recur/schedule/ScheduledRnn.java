package dev.recur.schedule;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.config.CellType;
import dev.recur.config.DropoutMask;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnTrace;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shared schedule: runs a stacked, optionally bidirectional RNN on any {@link DeviceBackend} using only
 * its buffers, GEMMs and the named kernels of {@link Kernels}.
 *
 * <p>Per layer, forward: the input projection of every step is one GEMM ({@code [T*B, I] x [I, D*G*H]},
 * both directions at once); then per step one recurrent GEMM for all gates of both directions (strided-
 * batched over directions) and one fused pointwise kernel that advances both directions, with variable
 * lengths handled inside the kernel. Training keeps the activated gates and {@code c} per layer in a
 * {@link RnnTrace}. Backward: per step (last to first) one fused pointwise kernel giving the gate gradients
 * and {@code dc_{t-1}}, and one recurrent GEMM for {@code dh_{t-1}}; after the loop, the weight gradients,
 * {@code dx} and the bias gradients as single large GEMMs and column sums.
 *
 * <p>Supported: every cell (GRU with either reset convention), layers, both directions with every
 * merge mode, lengths, initial states, LSTM projection, peepholes, the coupled gate, layer normalisation
 * (per gate block, of the input projections of all steps at once and of each step's recurrent projection),
 * all three dropouts (masks generated on the device), residual connections.
 *
 * <p>Scratch buffers live in a {@link Workspace} reused across steps and calls; a training trace owns the
 * buffers it saves and frees them on close. Indexes in the kernels are int32: a tensor of more than
 * 2^31-1 elements is refused.
 */
public final class ScheduledRnn implements RnnEngine {
    private final DeviceBackend be;
    private final RnnConfig cfg;
    private final int layers, dirs, hidden, out, gates, gh, sg;
    private final Layer[] weights;
    private final Workspace ws;
    private final DeviceBuffer dummy;
    private final List<Trace> liveTraces = new ArrayList<>();
    private boolean closed;

    /** Device copies of one layer's parameters, both directions stacked ({@code [D, ...]}). */
    private static final class Layer {
        DeviceBuffer wih, whh, bih, bhh, whr, peep;
        // Transposed copies, so every forward GEMM multiplies by a non-transposed right operand (the fast
        // case for hand-written GEMMs): wihT [I, D*GH], whhT [D, P, GH], whrT [D, H, P].
        DeviceBuffer wihT, whhT, whrT;
        // Layer-norm gains and shifts [D, GH].
        DeviceBuffer lnIhW, lnIhB, lnHhW, lnHhB;
        int in;
    }

    /**
     * When a layer's forward recurrence runs as one single-work-group launch ({@link Kernels#SINGLE_GROUP}) instead
     * of two launches per step: {@code AUTO} by the size heuristic of {@link #persistentKernel}, {@code ALWAYS}
     * whenever the backend and the configuration allow it, {@code NEVER}. The default comes from the system
     * property {@code recur.persistent} ({@code auto}, {@code always}, {@code never}; benchmarks use it).
     */
    public enum Persistence {
        AUTO, ALWAYS, NEVER;

        static Persistence fromProperty() {
            String v = System.getProperty("recur.persistent", "auto").trim().toUpperCase(java.util.Locale.ROOT);
            try {
                return valueOf(v);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("recur.persistent: expected auto, always or never, got '"
                        + System.getProperty("recur.persistent") + "'");
            }
        }
    }

    /** Work items of the single work-group that runs a persistent layer. */
    public static final int PERSIST_GROUP = 256;
    /**
     * AUTO runs a layer persistently when its per-step recurrent GEMM has at most this many rows (batch times
     * directions) and {@link #PERSIST_MAX_MACS} multiply-adds: one work-group is one core on a CPU device (one
     * multiprocessor on a GPU), so it wins only while launch and synchronisation costs dominate the step.
     * Measured with {@code ./recur bench --cell lstm --seq-len 20} and {@code -Drecur.persistent=always|never} on
     * PoCL (2-core EPYC, loaded; median ms persistent / per-step): H=128 B=1 1.38 / 5.3, B=4 3.9 / 3.1,
     * B=8 3.4 / 7.4, B=16 16 / 36 (min 10.2 / 10.2); H=256 B=1 4.2 / 29, B=4 4.6 / 8.1, B=8 10.9 / 13.9,
     * B=16 26 / 29 (min 16.6 / 16.9); H=512 B=1 13.7 / 220, B=4 94 / 42 (min 13 / 22). Past about 2M multiply-adds
     * per step or 8 rows the two cores of the per-step path catch up with the saved launches.
     */
    public static final int PERSIST_MAX_ROWS = 8;
    /** AUTO's bound on the multiply-adds of one step's recurrent GEMM (rows * G*H * P). */
    public static final long PERSIST_MAX_MACS = 1L << 21;

    /**
     * The single-work-group kernel that runs a whole layer's forward for this configuration and batch, or null for
     * the per-step path: supported are LSTM without projection or layer norm, GRU reset-after without layer norm,
     * and the plain RNNs, on a backend that {@code supports} the kernel.
     */
    public static String persistentKernel(RnnConfig cfg, int batch, Persistence mode,
                                          java.util.function.Predicate<String> supports) {
        return persistentKernel(cfg, batch, mode, supports, false);
    }

    /**
     * As {@link #persistentKernel(RnnConfig, int, Persistence, java.util.function.Predicate)}; with
     * {@code wholeDevice} (the backend's {@link DeviceBackend#sequenceKernelsScale}) AUTO takes the kernel at every
     * size: it then runs on all cores, so there is nothing for the per-step path to win back.
     */
    public static String persistentKernel(RnnConfig cfg, int batch, Persistence mode,
                                          java.util.function.Predicate<String> supports, boolean wholeDevice) {
        if (mode == Persistence.NEVER) return null;
        String k = sequenceKernel(cfg, Kernels.LSTM_SEQ_FWD, Kernels.GRU_SEQ_FWD, Kernels.RNN_SEQ_FWD);
        if (k == null || !supports.test(k)) return null;
        if (mode == Persistence.ALWAYS || wholeDevice) return k;
        long rows = (long) batch * cfg.directions();
        long macs = rows * cfg.gates() * cfg.hiddenSize() * (long) cfg.outSize();
        return rows <= PERSIST_MAX_ROWS && macs <= PERSIST_MAX_MACS ? k : null;
    }

    /**
     * The whole-sequence backward kernel ({@link Kernels#SEQUENCE_BWD}) for this configuration, or null for the
     * per-step loop: the same configurations as the forward ones, on a backend that {@code supports} it, unless
     * {@code mode} is NEVER (which benchmarks use to time the per-step path).
     */
    public static String sequenceBackwardKernel(RnnConfig cfg, Persistence mode,
                                                java.util.function.Predicate<String> supports) {
        if (mode == Persistence.NEVER) return null;
        String k = sequenceKernel(cfg, Kernels.LSTM_SEQ_BWD, Kernels.GRU_SEQ_BWD, Kernels.RNN_SEQ_BWD);
        return k != null && supports.test(k) ? k : null;
    }

    /**
     * The whole-sequence kernel for {@code cfg}'s cell, one of the three given, or null where an option rules the
     * sequence kernels out (LSTM projection, layer norm, GRU reset-before).
     */
    private static String sequenceKernel(RnnConfig cfg, String lstm, String gru, String rnn) {
        return switch (cfg.cell()) {
            case LSTM -> cfg.projSize() == 0 && !cfg.layerNorm() ? lstm : null;
            case GRU -> cfg.gruReset() == GruReset.AFTER && !cfg.layerNorm() ? gru : null;
            case RNN_TANH, RNN_RELU -> rnn;
        };
    }

    private final Persistence persistence;

    public ScheduledRnn(DeviceBackend backend, RnnConfig config) {
        this(backend, config, Persistence.fromProperty());
    }

    /** A network on {@code backend} whose forward uses the persistent kernels as {@code persistence} says. */
    public ScheduledRnn(DeviceBackend backend, RnnConfig config, Persistence persistence) {
        if (persistence == null) throw new IllegalArgumentException("persistence: must not be null");
        this.persistence = persistence;
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.be = backend;
        this.cfg = config;
        this.layers = config.numLayers();
        this.dirs = config.directions();
        this.hidden = config.hiddenSize();
        this.out = config.outSize();
        this.gates = config.gates();
        this.gh = gates * hidden;
        this.sg = config.cell() == CellType.GRU ? 4 * hidden : gh;
        this.ws = new Workspace(backend);
        this.weights = new Layer[layers];
        DeviceBuffer dm = null;
        try {
            dm = backend.allocate(DeviceBuffer.Type.F32, 1);
            for (int k = 0; k < layers; k++) {
                Layer l = new Layer();
                weights[k] = l;
                l.in = config.layerInputSize(k);
                l.wih = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh * l.in);
                l.whh = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh * out);
                l.wihT = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh * l.in);
                l.whhT = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh * out);
                l.bih = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh);
                l.bhh = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh);
                backend.fill(l.bih, 0, l.bih.size(), 0);
                backend.fill(l.bhh, 0, l.bhh.size(), 0);
                if (config.projSize() > 0) {
                    l.whr = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * out * hidden);
                    l.whrT = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * out * hidden);
                }
                if (config.layerNorm()) {
                    l.lnIhW = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh);
                    l.lnIhB = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh);
                    l.lnHhW = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh);
                    l.lnHhB = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * gh);
                }
                if (config.peephole()) {
                    l.peep = backend.allocate(DeviceBuffer.Type.F32, (long) dirs * 3 * hidden);
                    backend.fill(l.peep, 0, l.peep.size(), 0);
                }
            }
        } catch (RuntimeException | Error e) {
            if (dm != null) dm.close();
            freeWeights();
            ws.close();
            throw e;
        }
        this.dummy = dm;
    }

    private void freeWeights() {
        for (Layer l : weights) {
            if (l == null) continue;
            for (DeviceBuffer b : new DeviceBuffer[] {l.wih, l.whh, l.bih, l.bhh, l.whr, l.peep, l.wihT, l.whhT, l.whrT, l.lnIhW, l.lnIhB,
                    l.lnHhW, l.lnHhB}) if (b != null) b.close();
        }
    }

    @Override
    public void setWeights(RnnWeights w) {
        ensureOpen();
        for (int k = 0; k < layers; k++) {
            Layer l = weights[k];
            float[] wihT = new float[dirs * gh * l.in];
            for (int d = 0; d < dirs; d++) {
                Tensor wi = w.get("weight_ih", k, d), wh = w.get("weight_hh", k, d);
                upload(wi, l.wih, (long) d * gh * l.in);
                upload(wh, l.whh, (long) d * gh * out);
                transposeInto(wi, wihT, d * gh, dirs * gh);
                float[] whT = new float[gh * out];
                transposeInto(wh, whT, 0, gh);
                be.upload(whT, 0, l.whhT, (long) d * gh * out, whT.length);
                if (cfg.projSize() > 0) {
                    Tensor wr = w.get("weight_hr", k, d);
                    float[] wrT = new float[out * hidden];
                    transposeInto(wr, wrT, 0, out);
                    be.upload(wrT, 0, l.whrT, (long) d * out * hidden, wrT.length);
                }
                if (cfg.bias()) {
                    upload(w.get("bias_ih", k, d), l.bih, (long) d * gh);
                    upload(w.get("bias_hh", k, d), l.bhh, (long) d * gh);
                }
                if (cfg.projSize() > 0) upload(w.get("weight_hr", k, d), l.whr, (long) d * out * hidden);
                if (cfg.peephole()) {
                    upload(w.get("weight_ci", k, d), l.peep, (long) (d * 3) * hidden);
                    if (!cfg.coupledGate()) upload(w.get("weight_cf", k, d), l.peep, (long) (d * 3 + 1) * hidden);
                    upload(w.get("weight_co", k, d), l.peep, (long) (d * 3 + 2) * hidden);
                }
                if (cfg.layerNorm()) {
                    upload(w.get("ln_ih_weight", k, d), l.lnIhW, (long) d * gh);
                    upload(w.get("ln_ih_bias", k, d), l.lnIhB, (long) d * gh);
                    upload(w.get("ln_hh_weight", k, d), l.lnHhW, (long) d * gh);
                    upload(w.get("ln_hh_bias", k, d), l.lnHhB, (long) d * gh);
                }
            }
            be.upload(wihT, 0, l.wihT, 0, wihT.length);
        }
    }

    /** Writes the transpose of the 2-D tensor {@code t} [r, c] into {@code dst} as [c, ld] at column {@code col}. */
    private static void transposeInto(Tensor t, float[] dst, int col, int ld) {
        int r = t.dim(0), c = t.dim(1);
        double[] v = t.data();
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) dst[j * ld + col + i] = (float) v[i * c + j];
    }

    private void upload(Tensor t, DeviceBuffer dst, long off) {
        be.uploadDoubles(t.data(), 0, dst, off, t.data().length);
    }

    /** Dropout parameters of one call, as the kernels take them. */
    private record Drop(int seedLo, int seedHi, int inThresh, float inScale, int recThresh, float recScale,
                        int betweenThresh, float betweenScale) {
        static Drop of(RnnConfig c, boolean training, long seed) {
            return new Drop((int) seed, (int) (seed >>> 32),
                    training ? DropoutMask.threshold(c.inputDropout()) : 0, (float) (1.0 / (1.0 - c.inputDropout())),
                    training ? DropoutMask.threshold(c.recurrentDropout()) : 0, (float) (1.0 / (1.0 - c.recurrentDropout())),
                    training ? DropoutMask.threshold(c.dropout()) : 0, (float) (1.0 / (1.0 - c.dropout())));
        }
    }

    /** What one layer's forward kept (all owned by the trace in training mode). */
    private static final class LayerSave {
        DeviceBuffer in;     // [T,B,I] the layer's input (after between-layer dropout)
        DeviceBuffer xd;     // [D,T,B,I] input after variational input dropout (or null)
        DeviceBuffer y;      // [T,B,D,P] per-direction outputs
        DeviceBuffer gsave;  // [T,B,D,SG]
        DeviceBuffer csave;  // [T,B,D,H] (LSTM)
        DeviceBuffer msave;  // [T,B,D,H] (LSTM projection)
        DeviceBuffer xhatIh, rstdIh, xhatHh, rstdHh;  // layer norm: [T,B,D,GH] and [T,B,D,G]
    }

    /** A training forward's saved state: device buffers owned here, freed by {@link #close()}. */
    private final class Trace implements RnnTrace {
        final int steps, batch;
        final Drop drop;
        final LayerSave[] saved = new LayerSave[layers];
        final List<DeviceBuffer> owned = new ArrayList<>();
        DeviceBuffer lengths, h0, c0;
        boolean traceClosed;

        Trace(int steps, int batch, Drop drop) {
            this.steps = steps;
            this.batch = batch;
            this.drop = drop;
        }

        DeviceBuffer alloc(DeviceBuffer.Type type, long n) {
            DeviceBuffer b = be.allocate(type, Math.max(1, n));
            owned.add(b);
            return b;
        }

        @Override
        public long savedBytes() {
            long s = 0;
            for (DeviceBuffer b : owned) s += b.bytes();
            return s;
        }

        @Override
        public void close() {
            if (traceClosed) return;
            traceClosed = true;
            liveTraces.remove(this);
            for (DeviceBuffer b : owned) b.close();
            owned.clear();
        }
    }

    private static void checkIndexable(String what, long elements) {
        if (elements > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + ": " + elements + " elements exceed the device kernels' int32 "
                    + "index range (" + Integer.MAX_VALUE + ")");
        }
    }

    @Override
    public RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed) {
        ensureOpen();
        final int T = x.dim(0), B = x.dim(1);
        int maxIn = cfg.inputSize();
        for (int k = 0; k < layers; k++) maxIn = Math.max(maxIn, weights[k].in);
        checkIndexable("x/xw", (long) T * B * Math.max(dirs * (long) Math.max(sg, gh), (long) dirs * maxIn));
        Drop drop = Drop.of(cfg, training, seed);
        boolean lstm = cfg.cell() == CellType.LSTM;
        Trace trace = training ? new Trace(T, B, drop) : null;
        if (trace != null) liveTraces.add(trace);
        try {
            DeviceBuffer lenBuf = trace != null ? trace.alloc(DeviceBuffer.Type.I32, B) : ws.get("lengths", DeviceBuffer.Type.I32, B);
            be.upload(lengths, 0, lenBuf, 0, B);
            long stateP = (long) layers * dirs * B * out, stateH = (long) layers * dirs * B * hidden;
            DeviceBuffer h0Buf = trace != null ? trace.alloc(DeviceBuffer.Type.F32, stateP) : ws.f32("h0", stateP);
            upload(h0, h0Buf, 0);
            DeviceBuffer c0Buf = null;
            if (lstm) {
                c0Buf = trace != null ? trace.alloc(DeviceBuffer.Type.F32, stateH) : ws.f32("c0", stateH);
                upload(c0, c0Buf, 0);
            }
            DeviceBuffer xBuf = trace != null ? trace.alloc(DeviceBuffer.Type.F32, (long) T * B * cfg.inputSize())
                    : ws.f32("x", (long) T * B * cfg.inputSize());
            upload(x, xBuf, 0);
            if (trace != null) {
                trace.lengths = lenBuf;
                trace.h0 = h0Buf;
                trace.c0 = c0Buf;
            }
            float[] hN = new float[(int) stateP];
            float[] cN = lstm ? new float[(int) stateH] : null;
            DeviceBuffer in = xBuf;
            DeviceBuffer result = null;
            int width = cfg.outputWidth();
            for (int k = 0; k < layers; k++) {
                LayerSave ls = forwardLayer(k, T, B, in, lenBuf, h0Buf, c0Buf, hN, cN, drop, trace);
                boolean last = k == layers - 1;
                boolean direct = (dirs == 1 || cfg.merge() == MergeMode.CONCAT) && !cfg.residualAt(k)
                        && (last || drop.betweenThresh == 0);
                DeviceBuffer merged;
                if (direct) {
                    merged = ls.y;
                } else {
                    long n = (long) T * B * width;
                    merged = trace != null ? trace.alloc(DeviceBuffer.Type.F32, n) : ws.f32("merged" + (k & 1), n);
                    be.launch(Kernels.MERGE_FWD, new long[] {width, B, T}, T, B, out, dirs, width, cfg.merge().ordinal(),
                            cfg.residualAt(k) ? 1 : 0, lenBuf, ls.y, in, merged, drop.seedLo, drop.seedHi, k,
                            last ? 0 : drop.betweenThresh, drop.betweenScale);
                }
                if (trace != null) trace.saved[k] = ls;
                in = merged;
                result = merged;
            }
            Tensor y = Tensor.zeros(T, B, width);
            be.downloadDoubles(result, 0, y.data(), 0, y.data().length);
            Tensor hNt = Tensor.ofFloats(hN, layers * dirs, B, out);
            Tensor cNt = lstm ? Tensor.ofFloats(cN, layers * dirs, B, hidden) : null;
            return new RnnOutput(y, hNt, cNt, trace);
        } catch (RuntimeException | Error e) {
            // Nothing this call allocated survives a failure: the trace and any workspace growth are released.
            if (trace != null) trace.close();
            releaseWorkspace(e);
            throw e;
        }
    }

    private void releaseWorkspace(Throwable failure) {
        try {
            ws.close();
        } catch (RuntimeException suppressed) {
            failure.addSuppressed(suppressed);
        }
    }

    private LayerSave forwardLayer(int k, int T, int B, DeviceBuffer in, DeviceBuffer lenBuf, DeviceBuffer h0Buf,
                                   DeviceBuffer c0Buf, float[] hN, float[] cN, Drop drop, Trace trace) {
        Layer w = weights[k];
        boolean training = trace != null;
        CellType cell = cfg.cell();
        boolean lstm = cell == CellType.LSTM, gru = cell == CellType.GRU, proj = cfg.projSize() > 0;
        boolean before = gru && cfg.gruReset() == GruReset.BEFORE;
        int D = dirs, H = hidden, P = out, I = w.in;
        long tb = (long) T * B;
        LayerSave ls = new LayerSave();
        ls.in = in;
        ls.y = training ? trace.alloc(DeviceBuffer.Type.F32, tb * D * P) : ws.f32("y" + (k & 1), tb * D * P);
        if (training && (lstm || gru)) ls.gsave = trace.alloc(DeviceBuffer.Type.F32, tb * D * sg);
        if (training && lstm) ls.csave = trace.alloc(DeviceBuffer.Type.F32, tb * D * H);
        if (training && proj) ls.msave = trace.alloc(DeviceBuffer.Type.F32, tb * D * H);
        boolean ln = cfg.layerNorm();
        if (training && ln) {
            ls.xhatIh = trace.alloc(DeviceBuffer.Type.F32, tb * D * gh);
            ls.rstdIh = trace.alloc(DeviceBuffer.Type.F32, tb * D * gates);
            ls.xhatHh = trace.alloc(DeviceBuffer.Type.F32, tb * D * gh);
            ls.rstdHh = trace.alloc(DeviceBuffer.Type.F32, tb * D * gates);
        }
        DeviceBuffer xhatIh = ls.xhatIh != null ? ls.xhatIh : dummy, rstdIh = ls.rstdIh != null ? ls.rstdIh : dummy;
        DeviceBuffer xhatHh = ls.xhatHh != null ? ls.xhatHh : dummy, rstdHh = ls.rstdHh != null ? ls.rstdHh : dummy;

        // Input projection of every step, both directions.
        DeviceBuffer xw = ws.f32("xw", tb * D * gh);
        if (drop.inThresh != 0) {
            ls.xd = trace.alloc(DeviceBuffer.Type.F32, D * tb * I);
            be.launch(Kernels.INPUT_DROPOUT_FWD, new long[] {I, B, (long) T * D}, T, B, I, D, in, ls.xd,
                    drop.seedLo, drop.seedHi, k, drop.inThresh, drop.inScale);
            be.gemmStridedBatched(false, false, (int) tb, gh, I, 1f, ls.xd, 0, I, tb * I, w.wihT, 0, D * gh, gh,
                    0f, xw, 0, D * gh, gh, D);
        } else {
            be.gemm(false, false, (int) tb, D * gh, I, 1f, in, 0, I, w.wihT, 0, D * gh, 0f, xw, 0, D * gh);
        }
        if (ln) {
            long rows = tb * D * gates;
            be.launch(Kernels.LN_ROWS_FWD, new long[] {rows}, (int) rows, H, gates, D, training ? 1 : 0, xw, w.lnIhW,
                    w.lnIhB, xhatIh, rstdIh);
        }

        DeviceBuffer h = ws.f32("h", (long) D * B * P);
        DeviceBuffer hin = ws.f32("hin", (long) D * B * P);
        DeviceBuffer hw = ws.f32("hw", (long) D * B * gh);
        DeviceBuffer c = lstm ? ws.f32("c", (long) D * B * H) : dummy;
        DeviceBuffer mout = proj ? ws.f32("mout", (long) D * B * H) : dummy;
        DeviceBuffer hp = proj ? ws.f32("hp", (long) D * B * P) : dummy;
        DeviceBuffer rz = before ? ws.f32("rz", 2L * D * B * H) : dummy;
        DeviceBuffer rh = before ? ws.f32("rh", (long) D * B * H) : dummy;
        be.copy(h0Buf, (long) k * D * B * P, h, 0, (long) D * B * P);
        if (lstm) be.copy(c0Buf, (long) k * D * B * H, c, 0, (long) D * B * H);
        boolean rdrop = drop.recThresh != 0;
        if (rdrop) {
            be.launch(Kernels.MASK_STATE, new long[] {P, B, D}, B, P, D, h, hin, drop.seedLo, drop.seedHi, k,
                    drop.recThresh, drop.recScale);
        }
        DeviceBuffer hsrc = rdrop ? hin : h;
        DeviceBuffer gsave = ls.gsave != null ? ls.gsave : dummy;
        DeviceBuffer csave = ls.csave != null ? ls.csave : dummy;
        DeviceBuffer msave = ls.msave != null ? ls.msave : dummy;
        DeviceBuffer peep = w.peep != null ? w.peep : dummy;
        long[] grid = {H, B, D};
        String seq = persistentKernel(cfg, B, persistence, be::supports, be.sequenceKernelsScale());
        // The 8-units-per-work-item step kernels where the backend has them (same arguments, grid8).
        boolean fwd8 = be.supports(lstm ? Kernels.LSTM_STEP_FWD8 : gru ? Kernels.GRU_STEP_FWD8 : Kernels.RNN_STEP_FWD8);
        long[] grid8 = {(H + 7) / 8, B, D};
        if (seq != null) {
            long[] one = {PERSIST_GROUP};
            switch (cell) {
                case RNN_TANH, RNN_RELU -> be.launch(Kernels.RNN_SEQ_FWD, one, T, B, H, D,
                        cell == CellType.RNN_TANH ? 0 : 1, lenBuf, xw, w.whhT, hw, w.bih, w.bhh, h, ls.y);
                case LSTM -> be.launch(Kernels.LSTM_SEQ_FWD, one, T, B, H, D, cfg.peephole() ? 1 : 0,
                        cfg.coupledGate() ? 1 : 0, training ? 1 : 0, lenBuf, xw, w.whhT, hw, w.bih, w.bhh, peep, c, h,
                        hin, ls.y, gsave, csave, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
                case GRU -> be.launch(Kernels.GRU_SEQ_FWD, one, T, B, H, D, training ? 1 : 0, lenBuf, xw, w.whhT, hw,
                        w.bih, w.bhh, h, hin, ls.y, gsave, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
            }
        }
        for (int s = 0; s < T && seq == null; s++) {
            if (before) {
                // r and z first; the n block multiplies r*h~, known only after them.
                be.gemmStridedBatched(false, false, B, 2 * H, P, 1f, hsrc, 0, P, (long) B * P, w.whhT, 0, gh,
                        (long) gh * P, 0f, hw, 0, gh, (long) B * gh, D);
                if (ln) {
                    be.launch(Kernels.LN_STEP_FWD, new long[] {2, B, D}, s, T, B, H, D, gates, 0, 2, training ? 1 : 0,
                            lenBuf, hw, w.lnHhW, w.lnHhB, xhatHh, rstdHh);
                }
                be.launch(Kernels.GRU_BEFORE_GATE_FWD, grid, s, T, B, H, D, lenBuf, xw, hw, w.bih, w.bhh, hsrc, rz, rh);
                be.gemmStridedBatched(false, false, B, H, H, 1f, rh, 0, H, (long) B * H, w.whhT, 2L * H, gh,
                        (long) gh * P, 0f, hw, 2L * H, gh, (long) B * gh, D);
                if (ln) {
                    be.launch(Kernels.LN_STEP_FWD, new long[] {1, B, D}, s, T, B, H, D, gates, 2, 1, training ? 1 : 0,
                            lenBuf, hw, w.lnHhW, w.lnHhB, xhatHh, rstdHh);
                }
                be.launch(Kernels.GRU_BEFORE_STEP_FWD, grid, s, T, B, H, D, training ? 1 : 0, lenBuf, xw, hw, w.bih,
                        w.bhh, rz, rh, h, hin, ls.y, gsave, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
                continue;
            }
            be.gemmStridedBatched(false, false, B, gh, P, 1f, hsrc, 0, P, (long) B * P, w.whhT, 0, gh, (long) gh * P,
                    0f, hw, 0, gh, (long) B * gh, D);
            if (ln) {
                be.launch(Kernels.LN_STEP_FWD, new long[] {gates, B, D}, s, T, B, H, D, gates, 0, gates,
                        training ? 1 : 0, lenBuf, hw, w.lnHhW, w.lnHhB, xhatHh, rstdHh);
            }
            switch (cell) {
                case RNN_TANH, RNN_RELU -> be.launch(fwd8 ? Kernels.RNN_STEP_FWD8 : Kernels.RNN_STEP_FWD,
                        fwd8 ? grid8 : grid, s, T, B, H, D, cell == CellType.RNN_TANH ? 0 : 1, lenBuf, xw, hw, w.bih,
                        w.bhh, h, ls.y);
                case LSTM -> be.launch(fwd8 ? Kernels.LSTM_STEP_FWD8 : Kernels.LSTM_STEP_FWD, fwd8 ? grid8 : grid, s,
                        T, B, H, D, P, proj ? 1 : 0,
                        cfg.peephole() ? 1 : 0, cfg.coupledGate() ? 1 : 0, training ? 1 : 0, lenBuf, xw, hw, w.bih,
                        w.bhh, peep, c, h, hin, ls.y, gsave, csave, mout, msave, drop.seedLo, drop.seedHi, k,
                        drop.recThresh, drop.recScale);
                case GRU -> be.launch(fwd8 ? Kernels.GRU_STEP_FWD8 : Kernels.GRU_STEP_FWD, fwd8 ? grid8 : grid, s, T,
                        B, H, D, training ? 1 : 0, lenBuf, xw, hw, w.bih, w.bhh, h, hin, ls.y, gsave, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
            }
            if (proj) {
                be.gemmStridedBatched(false, false, B, P, H, 1f, mout, 0, H, (long) B * H, w.whrT, 0, P, (long) P * H,
                        0f, hp, 0, P, (long) B * P, D);
                be.launch(Kernels.LSTM_PROJ_FWD, new long[] {P, B, D}, s, T, B, P, D, lenBuf, hp, h, hin, ls.y,
                        drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
            }
        }
        be.download(h, 0, hN, k * D * B * P, D * B * P);
        if (lstm) be.download(c, 0, cN, k * D * B * H, D * B * H);
        return ls;
    }

    @Override
    public RnnGradients backward(RnnTrace rnnTrace, Tensor dyT, Tensor dhNT, Tensor dcNT) {
        ensureOpen();
        try {
            return backwardImpl(rnnTrace, dyT, dhNT, dcNT);
        } catch (RuntimeException | Error e) {
            releaseWorkspace(e);
            throw e;
        }
    }

    private RnnGradients backwardImpl(RnnTrace rnnTrace, Tensor dyT, Tensor dhNT, Tensor dcNT) {
        if (!(rnnTrace instanceof Trace trace) || !liveTraces.contains(trace)) {
            throw new IllegalArgumentException("trace: not a live trace of this engine (closed, or made by another "
                    + "network or backend)");
        }
        final int T = trace.steps, B = trace.batch, D = dirs, H = hidden, P = out;
        if (dyT.dim(0) != T || dyT.dim(1) != B) {
            throw new IllegalArgumentException("dy: expected [" + T + ", " + B + ", " + cfg.outputWidth() + "], got "
                    + java.util.Arrays.toString(dyT.shape()));
        }
        CellType cell = cfg.cell();
        boolean lstm = cell == CellType.LSTM, gru = cell == CellType.GRU, proj = cfg.projSize() > 0;
        boolean before = gru && cfg.gruReset() == GruReset.BEFORE;
        Drop drop = trace.drop;
        long tb = (long) T * B;
        int width = cfg.outputWidth();
        DeviceBuffer lenBuf = trace.lengths;

        DeviceBuffer dout = ws.f32("dout", tb * width);
        upload(dyT, dout, 0);
        long stateP = (long) layers * D * B * P, stateH = (long) layers * D * B * H;
        DeviceBuffer dhNAll = ws.f32("dhNAll", stateP);
        upload(dhNT, dhNAll, 0);
        DeviceBuffer dcNAll = dummy;
        if (lstm) {
            dcNAll = ws.f32("dcNAll", stateH);
            upload(dcNT, dcNAll, 0);
        }
        float[] dh0 = new float[(int) stateP];
        float[] dc0 = lstm ? new float[(int) stateH] : null;
        Map<String, Tensor> grads = new LinkedHashMap<>();
        Tensor dx = null;

        for (int k = layers - 1; k >= 0; k--) {
            Layer w = weights[k];
            LayerSave ls = trace.saved[k];
            int I = w.in;
            // Gradient on this layer's per-direction outputs.
            DeviceBuffer dy;
            if (dirs == 1 || cfg.merge() == MergeMode.CONCAT) {
                dy = dout;
            } else {
                dy = ws.f32("dylayer", tb * D * P);
                be.launch(Kernels.MERGE_BWD, new long[] {P, B, (long) T * D}, T, B, P, D, width, cfg.merge().ordinal(),
                        lenBuf, dout, ls.y, dy);
            }
            DeviceBuffer dhN = ws.f32("dhN", (long) D * B * P);
            be.copy(dhNAll, (long) k * D * B * P, dhN, 0, (long) D * B * P);
            DeviceBuffer h0l = ws.f32("h0l", (long) D * B * P);
            be.copy(trace.h0, (long) k * D * B * P, h0l, 0, (long) D * B * P);
            DeviceBuffer dcN = dummy, c0l = dummy, dc = dummy;
            if (lstm) {
                dcN = ws.f32("dcN", (long) D * B * H);
                be.copy(dcNAll, (long) k * D * B * H, dcN, 0, (long) D * B * H);
                c0l = ws.f32("c0l", (long) D * B * H);
                be.copy(trace.c0, (long) k * D * B * H, c0l, 0, (long) D * B * H);
                dc = ws.f32("dc", (long) D * B * H);
                be.fill(dc, 0, (long) D * B * H, 0);
            }
            DeviceBuffer dhrec = ws.f32("dhrec", (long) D * B * P);
            be.fill(dhrec, 0, (long) D * B * P, 0);
            DeviceBuffer ddir = gru ? ws.f32("ddir", (long) D * B * H) : dummy;
            if (gru) be.fill(ddir, 0, (long) D * B * H, 0);
            DeviceBuffer dgs = ws.f32("dgs", (long) D * B * gh);
            DeviceBuffer dgall = ws.f32("dgall", tb * D * gh);
            // Reset-after GRU scales the recurrent side of the n gradient by r; elsewhere both sides agree.
            DeviceBuffer dgallh = gru && !before ? ws.f32("dgallh", tb * D * gh) : dgall;
            DeviceBuffer drh = before ? ws.f32("drh", (long) D * B * H) : dummy;
            boolean ln = cfg.layerNorm();
            // With layer norm the recurrent GEMMs need the gradient on the raw projection W_hh h~ (by time: dvallh).
            DeviceBuffer dvallh = ln ? ws.f32("dvallh", tb * D * gh) : dgallh;
            DeviceBuffer dht = proj ? ws.f32("dht", (long) D * B * P) : dummy;
            DeviceBuffer dhtall = proj ? ws.f32("dhtall", tb * D * P) : dummy;
            DeviceBuffer dm = proj ? ws.f32("dm", (long) D * B * H) : dummy;
            DeviceBuffer peep = w.peep != null ? w.peep : dummy;
            long[] grid = {H, B, D};
            boolean bwd8 = lstm && be.supports(Kernels.LSTM_STEP_BWD8);
            long[] grid8 = {(H + 7) / 8, B, D};
            String seqBwd = sequenceBackwardKernel(cfg, persistence, be::supports);
            if (seqBwd != null) {
                long[] one = {1};
                switch (cell) {
                    case RNN_TANH, RNN_RELU -> be.launch(Kernels.RNN_SEQ_BWD, one, T, B, H, D,
                            cell == CellType.RNN_TANH ? 0 : 1, lenBuf, dy, dhN, dhrec, ls.y, w.whh, dgs, dgall);
                    case LSTM -> be.launch(Kernels.LSTM_SEQ_BWD, one, T, B, H, D, cfg.peephole() ? 1 : 0,
                            cfg.coupledGate() ? 1 : 0, lenBuf, dy, dhN, dhrec, dcN, dc, ls.gsave, ls.csave, c0l, peep,
                            w.whh, dgs, dgall, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
                    case GRU -> be.launch(Kernels.GRU_SEQ_BWD, one, T, B, H, D, lenBuf, dy, dhN, dhrec, ddir, ls.gsave,
                            ls.y, h0l, w.whh, dgs, dgall, dgallh, drop.seedLo, drop.seedHi, k, drop.recThresh,
                            drop.recScale);
                }
            }
            for (int s = T - 1; s >= 0 && seqBwd == null; s--) {
                if (before) {
                    be.launch(Kernels.GRU_BEFORE_STEP_BWD, grid, s, T, B, H, D, lenBuf, dy, dhN, dhrec, ddir, ls.gsave,
                            ls.y, h0l, dgs, dgall, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
                    if (ln) {
                        be.launch(Kernels.LN_STEP_BWD, new long[] {1, B, D}, s, T, B, H, D, gates, 2, 1, lenBuf, dgs,
                                w.lnHhW, ls.xhatHh, ls.rstdHh, dvallh);
                    }
                    be.gemmStridedBatched(false, false, B, H, H, 1f, dgs, 2L * H, gh, (long) B * gh, w.whh, 2L * H * P, P,
                            (long) gh * P, 0f, drh, 0, H, (long) B * H, D);
                    be.launch(Kernels.GRU_BEFORE_RESET_BWD, grid, s, T, B, H, D, lenBuf, drh, ls.gsave, ls.y, h0l, dgs,
                            dgall, dhrec, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
                    if (ln) {
                        be.launch(Kernels.LN_STEP_BWD, new long[] {2, B, D}, s, T, B, H, D, gates, 0, 2, lenBuf, dgs,
                                w.lnHhW, ls.xhatHh, ls.rstdHh, dvallh);
                    }
                    be.gemmStridedBatched(false, false, B, P, 2 * H, 1f, dgs, 0, gh, (long) B * gh, w.whh, 0, P,
                            (long) gh * P, 1f, dhrec, 0, P, (long) B * P, D);
                    continue;
                }
                if (proj) {
                    be.launch(Kernels.LSTM_PROJ_BWD, new long[] {P, B, D}, s, T, B, P, D, lenBuf, dy, dhN, dhrec, dht,
                            dhtall, drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
                    be.gemmStridedBatched(false, false, B, H, P, 1f, dht, 0, P, (long) B * P, w.whr, 0, H, (long) P * H,
                            0f, dm, 0, H, (long) B * H, D);
                }
                switch (cell) {
                    case RNN_TANH, RNN_RELU -> be.launch(Kernels.RNN_STEP_BWD, grid, s, T, B, H, D,
                            cell == CellType.RNN_TANH ? 0 : 1, lenBuf, dy, dhN, dhrec, ls.y, dgs, dgall);
                    case LSTM -> be.launch(bwd8 ? Kernels.LSTM_STEP_BWD8 : Kernels.LSTM_STEP_BWD, bwd8 ? grid8 : grid,
                            s, T, B, H, D, P, proj ? 1 : 0,
                            cfg.peephole() ? 1 : 0, cfg.coupledGate() ? 1 : 0, lenBuf, dy, dhN, dhrec, dm, dcN, dc,
                            ls.gsave, ls.csave, c0l, peep, dgs, dgall, drop.seedLo, drop.seedHi, k, drop.recThresh,
                            drop.recScale);
                    case GRU -> be.launch(Kernels.GRU_STEP_BWD, grid, s, T, B, H, D, lenBuf, dy, dhN, dhrec, ddir,
                            ls.gsave, ls.y, h0l, dgs, dgall, dgallh, drop.seedLo, drop.seedHi, k, drop.recThresh,
                            drop.recScale);
                }
                if (ln) {
                    be.launch(Kernels.LN_STEP_BWD, new long[] {gates, B, D}, s, T, B, H, D, gates, 0, gates, lenBuf, dgs,
                            w.lnHhW, ls.xhatHh, ls.rstdHh, dvallh);
                }
                be.gemmStridedBatched(false, false, B, P, gh, 1f, dgs, 0, gh, (long) B * gh, w.whh, 0, P, (long) gh * P,
                        0f, dhrec, 0, P, (long) B * P, D);
            }
            // Initial-state gradients.
            DeviceBuffer dh0l = ws.f32("dh0l", (long) D * B * P);
            be.launch(Kernels.RNN_DH0, new long[] {P, B, D}, B, P, D, gru ? 1 : 0, dhrec, ddir, dh0l,
                    drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
            be.download(dh0l, 0, dh0, k * D * B * P, D * B * P);
            if (lstm) be.download(dc, 0, dc0, k * D * B * H, D * B * H);

            // Weight gradients over all steps at once.
            DeviceBuffer hprev = ws.f32("hprev", tb * D * P);
            be.launch(Kernels.GATHER_HPREV, new long[] {P, B, (long) T * D}, T, B, P, D, lenBuf, ls.y, h0l, hprev,
                    drop.seedLo, drop.seedHi, k, drop.recThresh, drop.recScale);
            DeviceBuffer dwhh = ws.f32("dwhh", (long) D * gh * P);
            if (before) {
                // W_h{r,z} saw h~_{t-1}; W_hn saw r*h~_{t-1}, saved as the fourth block of gsave.
                be.gemmStridedBatched(true, false, 2 * H, P, (int) tb, 1f, dvallh, 0, D * gh, gh, hprev, 0, D * P, P,
                        0f, dwhh, 0, P, (long) gh * P, D);
                be.gemmStridedBatched(true, false, H, P, (int) tb, 1f, dvallh, 2L * H, D * gh, gh, ls.gsave, 3L * H,
                        D * 4 * H, 4L * H, 0f, dwhh, 2L * H * P, P, (long) gh * P, D);
            } else {
                be.gemmStridedBatched(true, false, gh, P, (int) tb, 1f, dvallh, 0, D * gh, gh, hprev, 0, D * P, P,
                        0f, dwhh, 0, P, (long) gh * P, D);
            }
            DeviceBuffer dwih = ws.f32("dwih", (long) D * gh * I);
            DeviceBuffer dxk = ws.f32("dx" + (k & 1), tb * I);
            // The input-side GEMMs take the gradient on the raw projection: LN backward over all rows first.
            DeviceBuffer dvIh = dgall;
            float[] flnIhW = null, flnIhB = null, flnHhW = null, flnHhB = null;
            if (ln) {
                dvIh = ws.f32("dvIh", tb * D * gh);
                long rows = tb * D * gates;
                be.launch(Kernels.LN_ROWS_BWD, new long[] {rows}, (int) rows, H, gates, D, dgall, w.lnIhW, ls.xhatIh,
                        ls.rstdIh, dvIh);
                DeviceBuffer dlnIhW = ws.f32("dlnIhW", (long) D * gh), dlnIhB = ws.f32("dlnIhB", (long) D * gh),
                        dlnHhW = ws.f32("dlnHhW", (long) D * gh), dlnHhB = ws.f32("dlnHhB", (long) D * gh);
                long[] g1 = {(long) D * gh};
                be.launch(Kernels.COL_DOT, g1, (int) tb, D * gh, dgall, ls.xhatIh, dlnIhW, 0f);
                be.launch(Kernels.COL_SUM, g1, (int) tb, D * gh, dgall, dlnIhB, 0f);
                be.launch(Kernels.COL_DOT, g1, (int) tb, D * gh, dgallh, ls.xhatHh, dlnHhW, 0f);
                be.launch(Kernels.COL_SUM, g1, (int) tb, D * gh, dgallh, dlnHhB, 0f);
                flnIhW = new float[D * gh];
                flnIhB = new float[D * gh];
                flnHhW = new float[D * gh];
                flnHhB = new float[D * gh];
                be.download(dlnIhW, 0, flnIhW, 0, D * gh);
                be.download(dlnIhB, 0, flnIhB, 0, D * gh);
                be.download(dlnHhW, 0, flnHhW, 0, D * gh);
                be.download(dlnHhB, 0, flnHhB, 0, D * gh);
            }
            if (ls.xd != null) {
                be.gemmStridedBatched(true, false, gh, I, (int) tb, 1f, dvIh, 0, D * gh, gh, ls.xd, 0, I, tb * I,
                        0f, dwih, 0, I, (long) gh * I, D);
                DeviceBuffer dxd = ws.f32("dxd", D * tb * I);
                be.gemmStridedBatched(false, false, (int) tb, I, gh, 1f, dvIh, 0, D * gh, gh, w.wih, 0, I, (long) gh * I,
                        0f, dxd, 0, I, tb * I, D);
                be.launch(Kernels.INPUT_DROPOUT_BWD, new long[] {I, B, T}, T, B, I, D, dxd, dxk,
                        drop.seedLo, drop.seedHi, k, drop.inThresh, drop.inScale);
            } else {
                be.gemm(true, false, D * gh, I, (int) tb, 1f, dvIh, 0, D * gh, ls.in, 0, I, 0f, dwih, 0, I);
                be.gemm(false, false, (int) tb, I, D * gh, 1f, dvIh, 0, D * gh, w.wih, 0, I, 0f, dxk, 0, I);
            }
            float[] fwih = new float[D * gh * I], fwhh = new float[D * gh * P];
            be.download(dwih, 0, fwih, 0, fwih.length);
            be.download(dwhh, 0, fwhh, 0, fwhh.length);
            float[] fbih = null, fbhh = null, fwhr = null, fpeep = null;
            if (cfg.bias()) {
                DeviceBuffer db = ws.f32("dbias", 2L * D * gh);
                be.launch(Kernels.COL_SUM, new long[] {(long) D * gh}, (int) tb, D * gh, dgall, db, 0f);
                DeviceBuffer dbh = db;
                if (dgallh != dgall) {
                    // Both bias gradients are the same column sums unless the recurrent side differs (GRU, reset after).
                    dbh = ws.f32("dbiash", (long) D * gh);
                    be.launch(Kernels.COL_SUM, new long[] {(long) D * gh}, (int) tb, D * gh, dgallh, dbh, 0f);
                }
                fbih = new float[D * gh];
                fbhh = new float[D * gh];
                be.download(db, 0, fbih, 0, fbih.length);
                be.download(dbh, 0, fbhh, 0, fbhh.length);
            }
            if (proj) {
                DeviceBuffer dwhr = ws.f32("dwhr", (long) D * P * H);
                be.gemmStridedBatched(true, false, P, H, (int) tb, 1f, dhtall, 0, D * P, P, ls.msave, 0, D * H, H,
                        0f, dwhr, 0, H, (long) P * H, D);
                fwhr = new float[D * P * H];
                be.download(dwhr, 0, fwhr, 0, fwhr.length);
            }
            if (cfg.peephole()) {
                DeviceBuffer dp = ws.f32("dpeep", (long) D * 3 * H);
                be.launch(Kernels.LSTM_PEEPHOLE_GRAD, new long[] {H, D}, T, B, H, D, gates, cfg.coupledGate() ? 1 : 0,
                        lenBuf, dgall, ls.csave, c0l, dp);
                fpeep = new float[D * 3 * H];
                be.download(dp, 0, fpeep, 0, fpeep.length);
            }
            for (int d = 0; d < D; d++) {
                grads.put("weight_ih" + RnnWeights.suffix(k, d), slice(fwih, d * gh * I, gh, I));
                grads.put("weight_hh" + RnnWeights.suffix(k, d), slice(fwhh, d * gh * P, gh, P));
                if (cfg.bias()) {
                    grads.put("bias_ih" + RnnWeights.suffix(k, d), slice(fbih, d * gh, gh));
                    grads.put("bias_hh" + RnnWeights.suffix(k, d), slice(fbhh, d * gh, gh));
                }
                if (proj) grads.put("weight_hr" + RnnWeights.suffix(k, d), slice(fwhr, d * P * H, P, H));
                if (ln) {
                    grads.put("ln_ih_weight" + RnnWeights.suffix(k, d), slice(flnIhW, d * gh, gh));
                    grads.put("ln_ih_bias" + RnnWeights.suffix(k, d), slice(flnIhB, d * gh, gh));
                    grads.put("ln_hh_weight" + RnnWeights.suffix(k, d), slice(flnHhW, d * gh, gh));
                    grads.put("ln_hh_bias" + RnnWeights.suffix(k, d), slice(flnHhB, d * gh, gh));
                }
                if (cfg.peephole()) {
                    grads.put("weight_ci" + RnnWeights.suffix(k, d), slice(fpeep, d * 3 * H, H));
                    if (!cfg.coupledGate()) grads.put("weight_cf" + RnnWeights.suffix(k, d), slice(fpeep, (d * 3 + 1) * H, H));
                    grads.put("weight_co" + RnnWeights.suffix(k, d), slice(fpeep, (d * 3 + 2) * H, H));
                }
            }
            if (k == 0) {
                dx = Tensor.zeros(T, B, I);
                be.downloadDoubles(dxk, 0, dx.data(), 0, dx.data().length);
            } else if (!cfg.residualAt(k) && drop.betweenThresh == 0) {
                dout = dxk;
            } else {
                DeviceBuffer next = ws.f32("dout" + (k & 1), tb * I);
                be.launch(Kernels.LAYER_INPUT_BWD, new long[] {I, B, T}, T, B, I, cfg.residualAt(k) ? 1 : 0, lenBuf, dxk,
                        dout, next, drop.seedLo, drop.seedHi, k - 1, drop.betweenThresh, drop.betweenScale);
                dout = next;
            }
        }
        // Parameter gradients in PyTorch order.
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        for (String name : RnnWeights.shapes(cfg).keySet()) ordered.put(name, grads.get(name));
        Tensor dh0t = Tensor.ofFloats(dh0, layers * D, B, P);
        Tensor dc0t = lstm ? Tensor.ofFloats(dc0, layers * D, B, H) : null;
        return new RnnGradients(dx, dh0t, dc0t, ordered);
    }

    private static Tensor slice(float[] f, int off, int... shape) {
        int n = 1;
        for (int s : shape) n *= s;
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = f[off + i];
        return Tensor.of(d, shape);
    }

    /** Bytes of device memory held by this engine's weights and workspace (not by live traces). */
    public long workspaceBytes() {
        return ws.bytes();
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("ScheduledRnn: used after close()");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Trace t : new ArrayList<>(liveTraces)) t.close();
        freeWeights();
        ws.close();
        if (dummy != null) dummy.close();
    }
}
