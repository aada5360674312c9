package dev.recur.schedule;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Kernels;
import dev.recur.config.CellType;
import dev.recur.config.DropoutMask;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnTrace;
import dev.recur.engine.RnnWeights;
import dev.recur.engine.WeightSpace;
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
 * <p>Data stays on the device: {@link #forward(DeviceRnnInput, boolean, long, DeviceRnnOutput)} and
 * {@link #backward(RnnTrace, DeviceTensor, DeviceTensor, DeviceTensor, WeightSpace, GradMode, DeviceRnnGradients)}
 * take and return device tensors and neither uploads, downloads nor waits; the host-tensor methods upload, call them
 * and download. The parameters live in one flat {@link WeightSpace} (PyTorch's names and order); the stacked and
 * transposed copies the kernels read are derived from it on the device ({@link Kernels#TRANSPOSE}) when weights are
 * set or {@link #weightsUpdated()} says they changed. Weight gradients are summed in scratch buffers and written
 * into the caller's gradient space per parameter, copied (SET) or added (ADD).
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
    /** The parameters as PyTorch lays them out, one flat buffer: what callers read and write (see {@link #derive}). */
    private final WeightSpace space;
    /** The gradient space the host-tensor backward writes into and downloads from; made on first use. */
    private WeightSpace hostGrads;
    private final List<Trace> liveTraces = new ArrayList<>();
    private boolean closed;

    /**
     * One layer's parameters as the kernels read them, both directions stacked ({@code [D, ...]}) and the matrices
     * also transposed: derived on the device from {@link #space} by {@link #derive} (kernels are bound to whole
     * buffers, so the per-direction pieces of the flat space cannot be handed to them in place).
     */
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
        WeightSpace sp = null;
        try {
            dm = backend.allocate(DeviceBuffer.Type.F32, 1);
            sp = WeightSpace.allocate(backend, config);
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
            if (sp != null) sp.close();
            freeWeights();
            ws.close();
            throw e;
        }
        this.dummy = dm;
        this.space = sp;
    }

    private void freeWeights() {
        for (Layer l : weights) {
            if (l == null) continue;
            for (DeviceBuffer b : new DeviceBuffer[] {l.wih, l.whh, l.bih, l.bhh, l.whr, l.peep, l.wihT, l.whhT, l.whrT, l.lnIhW, l.lnIhB,
                    l.lnHhW, l.lnHhB}) if (b != null) b.close();
        }
    }

    /** Uploads {@code w} into the weight space (one upload per parameter) and derives the kernels' copies on the device. */
    @Override
    public void setWeights(RnnWeights w) {
        ensureOpen();
        space.upload(w);
        derive();
    }

    @Override
    public boolean runsOnDevice() {
        return true;
    }

    /** The weight space as callers see it: the same memory, but closing it frees nothing (the engine owns it). */
    @Override
    public WeightSpace weightSpace() {
        ensureOpen();
        if (publicSpace == null) publicSpace = WeightSpace.over(space.flat(), cfg);
        return publicSpace;
    }

    private WeightSpace publicSpace;

    @Override
    public void weightsUpdated() {
        ensureOpen();
        derive();
    }

    /**
     * Remakes the kernels' copies of the parameters ({@link Layer}) from the weight space, on the device: plain
     * copies for the stacked matrices and vectors, {@link Kernels#TRANSPOSE} for the transposed ones. No host traffic.
     */
    private void derive() {
        DeviceBuffer sb = space.flat().buffer();
        long base = space.flat().offset();
        for (int k = 0; k < layers; k++) {
            Layer l = weights[k];
            int I = l.in;
            for (int d = 0; d < dirs; d++) {
                String sfx = RnnWeights.suffix(k, d);
                long wi = base + space.offset("weight_ih" + sfx), wh = base + space.offset("weight_hh" + sfx);
                be.copy(sb, wi, l.wih, (long) d * gh * I, (long) gh * I);
                be.copy(sb, wh, l.whh, (long) d * gh * out, (long) gh * out);
                // wihT [I, D*GH]: column block d; whhT [D, P, GH]; whrT [D, H, P].
                transpose(gh, I, sb, wi, I, l.wihT, (long) d * gh, dirs * gh);
                transpose(gh, out, sb, wh, out, l.whhT, (long) d * gh * out, gh);
                if (cfg.bias()) {
                    be.copy(sb, base + space.offset("bias_ih" + sfx), l.bih, (long) d * gh, gh);
                    be.copy(sb, base + space.offset("bias_hh" + sfx), l.bhh, (long) d * gh, gh);
                }
                if (cfg.projSize() > 0) {
                    long wr = base + space.offset("weight_hr" + sfx);
                    be.copy(sb, wr, l.whr, (long) d * out * hidden, (long) out * hidden);
                    transpose(out, hidden, sb, wr, hidden, l.whrT, (long) d * out * hidden, out);
                }
                if (cfg.peephole()) {
                    be.copy(sb, base + space.offset("weight_ci" + sfx), l.peep, (long) (d * 3) * hidden, hidden);
                    if (!cfg.coupledGate()) {
                        be.copy(sb, base + space.offset("weight_cf" + sfx), l.peep, (long) (d * 3 + 1) * hidden, hidden);
                    }
                    be.copy(sb, base + space.offset("weight_co" + sfx), l.peep, (long) (d * 3 + 2) * hidden, hidden);
                }
                if (cfg.layerNorm()) {
                    be.copy(sb, base + space.offset("ln_ih_weight" + sfx), l.lnIhW, (long) d * gh, gh);
                    be.copy(sb, base + space.offset("ln_ih_bias" + sfx), l.lnIhB, (long) d * gh, gh);
                    be.copy(sb, base + space.offset("ln_hh_weight" + sfx), l.lnHhW, (long) d * gh, gh);
                    be.copy(sb, base + space.offset("ln_hh_bias" + sfx), l.lnHhB, (long) d * gh, gh);
                }
            }
        }
    }

    /** {@code dst[dstOff + c*dstLd + r] = src[srcOff + r*srcLd + c]} for a {@code rows x cols} matrix, on the device. */
    private void transpose(int rows, int cols, DeviceBuffer src, long srcOff, int srcLd, DeviceBuffer dst, long dstOff,
                           int dstLd) {
        checkIndexable("transpose offsets", Math.max(srcOff + (long) rows * srcLd, dstOff + (long) cols * dstLd));
        be.launch(Kernels.TRANSPOSE, new long[] {cols, rows}, rows, cols, 1, src, (int) srcOff, srcLd, dst,
                (int) dstOff, dstLd, 0f);
    }

    /**
     * Writes {@code count} gradient values from {@code src[srcOff..]} into the gradient space at parameter
     * {@code name} (from element {@code at} of it): a copy for SET, an accumulation for ADD.
     */
    private void deposit(WeightSpace grads, GradMode mode, String name, long at, DeviceBuffer src, long srcOff, long count) {
        if (grads == null) return;
        long dst = grads.flat().offset() + grads.offset(name) + at;
        if (mode == GradMode.SET) {
            be.copy(src, srcOff, grads.flat().buffer(), dst, count);
        } else {
            checkIndexable("gradient offsets", Math.max(srcOff, dst) + count);
            be.launch(Kernels.TRANSPOSE, new long[] {count, 1}, 1, 1, (int) count, src, (int) srcOff, 1,
                    grads.flat().buffer(), (int) dst, 1, 1f);
        }
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

    /**
     * The host-tensor forward: uploads the inputs, runs {@link #forward(DeviceRnnInput, boolean, long, DeviceRnnOutput)}
     * and downloads the results (freeing their device copies; a training output keeps its trace).
     */
    @Override
    public RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed) {
        ensureOpen();
        DeviceTensor xd = null, h0d = null, c0d = null, lend = null;
        try {
            xd = DeviceTensor.of(be, x);
            h0d = h0 == null ? null : DeviceTensor.of(be, h0);
            c0d = c0 == null ? null : DeviceTensor.of(be, c0);
            lend = DeviceTensor.ofInts(be, lengths, lengths.length);
            DeviceRnnOutput o = forward(new DeviceRnnInput(xd, h0d, c0d, lend), training, seed, null, true);
            // A training trace now owns x's buffer: it must outlive this call (a failed call's trace freed it already)
            if (o.trace() != null) xd = null;
            try {
                Tensor y = o.y().toTensor(), hN = o.hN().toTensor(), cN = o.cN() == null ? null : o.cN().toTensor();
                return new RnnOutput(y, hN, cN, o.trace());
            } catch (RuntimeException | Error e) {
                if (o.trace() != null) o.trace().close();
                throw e;
            } finally {
                o.y().close();
                o.hN().close();
                if (o.cN() != null) o.cN().close();
            }
        } finally {
            for (DeviceTensor t : new DeviceTensor[] {xd, h0d, c0d, lend}) if (t != null) t.close();
        }
    }

    /** A result tensor: the caller's (as a view, so closing the output leaves it open) or a new one. */
    private DeviceTensor result(DeviceTensor given, List<DeviceTensor> made, int... shape) {
        if (given != null) return given.view(0, shape);
        DeviceTensor t = DeviceTensor.allocate(be, DeviceBuffer.Type.F32, shape);
        made.add(t);
        return t;
    }

    /**
     * Forward on device tensors, time-major. What backward needs later (x, states, lengths) is copied on the device
     * into the trace; an inference call reads x in place. Either way the caller may overwrite its inputs as soon as
     * the call returns: later work on the backend's in-order stream cannot overtake this call's reads. Results go to
     * {@code into}'s tensors or to new ones. No host traffic and no waits.
     */
    @Override
    public DeviceRnnOutput forward(DeviceRnnInput input, boolean training, long seed, DeviceRnnOutput into) {
        return forward(input, training, seed, into, false);
    }

    /**
     * The forward; {@code hostCall} is the host-tensor wrapper's shortcut past two whole-tensor copies it does not
     * need: x was uploaded into a buffer of its own, which the call adopts instead of copying (a training trace
     * takes ownership of it), and y comes back as a view of the last layer's output (workspace or trace memory),
     * which the wrapper downloads at once.
     */
    private DeviceRnnOutput forward(DeviceRnnInput input, boolean training, long seed, DeviceRnnOutput into,
                                    boolean hostCall) {
        ensureOpen();
        DeviceTensor x = input.x();
        final int T = x.dim(0), B = x.dim(1);
        int maxIn = cfg.inputSize();
        for (int k = 0; k < layers; k++) maxIn = Math.max(maxIn, weights[k].in);
        checkIndexable("x/xw", (long) T * B * Math.max(dirs * (long) Math.max(sg, gh), (long) dirs * maxIn));
        Drop drop = Drop.of(cfg, training, seed);
        boolean lstm = cfg.cell() == CellType.LSTM;
        int width = cfg.outputWidth();
        Trace trace = training ? new Trace(T, B, drop) : null;
        if (trace != null) liveTraces.add(trace);
        List<DeviceTensor> made = new ArrayList<>();
        try {
            long stateP = (long) layers * dirs * B * out, stateH = (long) layers * dirs * B * hidden;
            DeviceTensor y = hostCall ? null : result(into == null ? null : into.y(), made, T, B, width);
            DeviceTensor hN = result(into == null ? null : into.hN(), made, layers * dirs, B, out);
            DeviceTensor cN = lstm ? result(into == null ? null : into.cN(), made, layers * dirs, B, hidden) : null;
            DeviceBuffer lenBuf = trace != null ? trace.alloc(DeviceBuffer.Type.I32, B) : ws.get("lengths", DeviceBuffer.Type.I32, B);
            DeviceTensor lengths = input.lengths();
            if (lengths != null) be.copy(lengths.buffer(), lengths.offset(), lenBuf, 0, B);
            else be.fill(lenBuf, 0, B, T);
            DeviceBuffer h0Buf = trace != null ? trace.alloc(DeviceBuffer.Type.F32, stateP) : ws.f32("h0", stateP);
            copyOrZero(input.h0(), h0Buf, stateP);
            DeviceBuffer c0Buf = null;
            if (lstm) {
                c0Buf = trace != null ? trace.alloc(DeviceBuffer.Type.F32, stateH) : ws.f32("c0", stateH);
                copyOrZero(input.c0(), c0Buf, stateH);
            }
            long xn = (long) T * B * cfg.inputSize();
            DeviceBuffer xBuf;
            if (hostCall) {
                xBuf = x.buffer();
                if (trace != null) trace.owned.add(xBuf);
            } else if (trace == null && x.offset() == 0) {
                // Inference reads x in place (nothing writes a layer's input, and the stream is in order); training
                // copies it, since backward needs it after the caller may have reused it.
                xBuf = x.buffer();
            } else {
                xBuf = trace != null ? trace.alloc(DeviceBuffer.Type.F32, xn) : ws.f32("x", xn);
                be.copy(x.buffer(), x.offset(), xBuf, 0, xn);
            }
            if (trace != null) {
                trace.lengths = lenBuf;
                trace.h0 = h0Buf;
                trace.c0 = c0Buf;
            }
            DeviceBuffer in = xBuf;
            DeviceBuffer result = null;
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
            if (hostCall) y = DeviceTensor.over(be, result, T, B, width);
            else be.copy(result, 0, y.buffer(), y.offset(), (long) T * B * width);
            return new DeviceRnnOutput(y, hN, cN, trace);
        } catch (RuntimeException | Error e) {
            // Nothing this call allocated survives a failure: the trace, the results and any workspace growth.
            if (trace != null) trace.close();
            for (DeviceTensor t : made) t.close();
            releaseWorkspace(e);
            throw e;
        }
    }

    /** Copies {@code n} elements of {@code src} into {@code dst}, or zeros where {@code src} is absent. */
    private void copyOrZero(DeviceTensor src, DeviceBuffer dst, long n) {
        if (src == null) be.fill(dst, 0, n, 0);
        else be.copy(src.buffer(), src.offset(), dst, 0, n);
    }

    private void releaseWorkspace(Throwable failure) {
        try {
            ws.close();
        } catch (RuntimeException suppressed) {
            failure.addSuppressed(suppressed);
        }
    }

    private LayerSave forwardLayer(int k, int T, int B, DeviceBuffer in, DeviceBuffer lenBuf, DeviceBuffer h0Buf,
                                   DeviceBuffer c0Buf, DeviceTensor hN, DeviceTensor cN, Drop drop, Trace trace) {
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
        be.copy(h, 0, hN.buffer(), hN.offset() + (long) k * D * B * P, (long) D * B * P);
        if (lstm) be.copy(c, 0, cN.buffer(), cN.offset() + (long) k * D * B * H, (long) D * B * H);
        return ls;
    }

    /**
     * The host-tensor backward: uploads the output gradients, runs the device backward into this engine's own
     * gradient space (SET) and downloads {@code dx}, {@code dh0}, {@code dc0} and the whole space once.
     */
    @Override
    public RnnGradients backward(RnnTrace rnnTrace, Tensor dyT, Tensor dhNT, Tensor dcNT) {
        ensureOpen();
        requireLiveTrace(rnnTrace);
        DeviceTensor dy = null, dhN = null, dcN = null;
        try {
            dy = dyT == null ? null : DeviceTensor.of(be, dyT);
            dhN = dhNT == null ? null : DeviceTensor.of(be, dhNT);
            dcN = dcNT == null ? null : DeviceTensor.of(be, dcNT);
            if (hostGrads == null) hostGrads = WeightSpace.allocate(be, cfg);
            try (DeviceRnnGradients g = backward(rnnTrace, dy, dhN, dcN, hostGrads, GradMode.SET, null, true)) {
                Tensor dx = g.dx().toTensor(), dh0 = g.dh0().toTensor(), dc0 = g.dc0() == null ? null : g.dc0().toTensor();
                return new RnnGradients(dx, dh0, dc0, hostGrads.toTensors());
            }
        } finally {
            for (DeviceTensor t : new DeviceTensor[] {dy, dhN, dcN}) if (t != null) t.close();
        }
    }

    private Trace requireLiveTrace(RnnTrace rnnTrace) {
        if (!(rnnTrace instanceof Trace trace) || !liveTraces.contains(trace)) {
            throw new IllegalArgumentException("trace: not a live trace of this engine (closed, or made by another "
                    + "network or backend)");
        }
        return trace;
    }

    /**
     * Backward on device tensors, time-major: {@code dx}, {@code dh0}, {@code dc0} into {@code into}'s tensors or
     * new ones; the weight gradients into {@code grads} (SET or ADD), each parameter's from the scratch buffer it
     * was summed in. No host traffic and no waits.
     */
    @Override
    public DeviceRnnGradients backward(RnnTrace rnnTrace, DeviceTensor dy, DeviceTensor dhN, DeviceTensor dcN,
                                       WeightSpace grads, GradMode mode, DeviceRnnGradients into) {
        return backward(rnnTrace, dy, dhN, dcN, grads, mode, into, false);
    }

    /**
     * The backward; {@code hostCall} is the host wrapper's shortcut past two whole-tensor copies: its freshly
     * uploaded dy is read in place, and dx comes back as a view of the workspace, downloaded at once.
     */
    private DeviceRnnGradients backward(RnnTrace rnnTrace, DeviceTensor dy, DeviceTensor dhN, DeviceTensor dcN,
                                        WeightSpace grads, GradMode mode, DeviceRnnGradients into, boolean hostCall) {
        ensureOpen();
        Trace trace = requireLiveTrace(rnnTrace);
        List<DeviceTensor> made = new ArrayList<>();
        try {
            return backwardImpl(trace, dy, dhN, dcN, grads, mode == null ? GradMode.SET : mode, into, made, hostCall);
        } catch (RuntimeException | Error e) {
            for (DeviceTensor t : made) t.close();
            releaseWorkspace(e);
            throw e;
        }
    }

    private DeviceRnnGradients backwardImpl(Trace trace, DeviceTensor dyT, DeviceTensor dhNT, DeviceTensor dcNT,
                                            WeightSpace grads, GradMode mode, DeviceRnnGradients into,
                                            List<DeviceTensor> made, boolean hostCall) {
        final int T = trace.steps, B = trace.batch, D = dirs, H = hidden, P = out;
        if (dyT != null && (dyT.dim(0) != T || dyT.dim(1) != B)) {
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

        // The kernels only read the incoming dy; lower layers get their gradient in other buffers.
        DeviceBuffer dout;
        // Read in place where it starts a buffer (the stream is in order: a later write by the caller cannot overtake).
        if (dyT != null && dyT.offset() == 0) {
            dout = dyT.buffer();
        } else {
            dout = ws.f32("dout", tb * width);
            copyOrZero(dyT, dout, tb * width);
        }
        long stateP = (long) layers * D * B * P, stateH = (long) layers * D * B * H;
        DeviceBuffer dhNAll = ws.f32("dhNAll", stateP);
        copyOrZero(dhNT, dhNAll, stateP);
        DeviceBuffer dcNAll = dummy;
        if (lstm) {
            dcNAll = ws.f32("dcNAll", stateH);
            copyOrZero(dcNT, dcNAll, stateH);
        }
        DeviceTensor dx = hostCall ? null : result(into == null ? null : into.dx(), made, T, B, cfg.inputSize());
        DeviceTensor dh0 = result(into == null ? null : into.dh0(), made, layers * D, B, P);
        DeviceTensor dc0 = lstm ? result(into == null ? null : into.dc0(), made, layers * D, B, H) : null;

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
            be.copy(dh0l, 0, dh0.buffer(), dh0.offset() + (long) k * D * B * P, (long) D * B * P);
            if (lstm) be.copy(dc, 0, dc0.buffer(), dc0.offset() + (long) k * D * B * H, (long) D * B * H);

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
            // Layer 0's dx GEMM writes straight into the caller's dx when nothing follows it (no input dropout).
            boolean direct = k == 0 && !hostCall && ls.xd == null;
            DeviceBuffer dxk = direct ? dx.buffer() : ws.f32("dx" + (k & 1), tb * I);
            long dxOff = direct ? dx.offset() : 0;
            // The input-side GEMMs take the gradient on the raw projection: LN backward over all rows first.
            DeviceBuffer dvIh = dgall;
            DeviceBuffer dlnIhW = null, dlnIhB = null, dlnHhW = null, dlnHhB = null;
            if (ln) {
                dvIh = ws.f32("dvIh", tb * D * gh);
                long rows = tb * D * gates;
                be.launch(Kernels.LN_ROWS_BWD, new long[] {rows}, (int) rows, H, gates, D, dgall, w.lnIhW, ls.xhatIh,
                        ls.rstdIh, dvIh);
                dlnIhW = ws.f32("dlnIhW", (long) D * gh);
                dlnIhB = ws.f32("dlnIhB", (long) D * gh);
                dlnHhW = ws.f32("dlnHhW", (long) D * gh);
                dlnHhB = ws.f32("dlnHhB", (long) D * gh);
                long[] g1 = {(long) D * gh};
                be.launch(Kernels.COL_DOT, g1, (int) tb, D * gh, dgall, ls.xhatIh, dlnIhW, 0f);
                be.launch(Kernels.COL_SUM, g1, (int) tb, D * gh, dgall, dlnIhB, 0f);
                be.launch(Kernels.COL_DOT, g1, (int) tb, D * gh, dgallh, ls.xhatHh, dlnHhW, 0f);
                be.launch(Kernels.COL_SUM, g1, (int) tb, D * gh, dgallh, dlnHhB, 0f);
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
                be.gemm(false, false, (int) tb, I, D * gh, 1f, dvIh, 0, D * gh, w.wih, 0, I, 0f, dxk, dxOff, I);
            }
            DeviceBuffer db = null, dbh = null, dwhr = null, dp = null;
            if (cfg.bias()) {
                db = ws.f32("dbias", 2L * D * gh);
                be.launch(Kernels.COL_SUM, new long[] {(long) D * gh}, (int) tb, D * gh, dgall, db, 0f);
                dbh = db;
                if (dgallh != dgall) {
                    // Both bias gradients are the same column sums unless the recurrent side differs (GRU, reset after).
                    dbh = ws.f32("dbiash", (long) D * gh);
                    be.launch(Kernels.COL_SUM, new long[] {(long) D * gh}, (int) tb, D * gh, dgallh, dbh, 0f);
                }
            }
            if (proj) {
                dwhr = ws.f32("dwhr", (long) D * P * H);
                be.gemmStridedBatched(true, false, P, H, (int) tb, 1f, dhtall, 0, D * P, P, ls.msave, 0, D * H, H,
                        0f, dwhr, 0, H, (long) P * H, D);
            }
            if (cfg.peephole()) {
                dp = ws.f32("dpeep", (long) D * 3 * H);
                be.launch(Kernels.LSTM_PEEPHOLE_GRAD, new long[] {H, D}, T, B, H, D, gates, cfg.coupledGate() ? 1 : 0,
                        lenBuf, dgall, ls.csave, c0l, dp);
            }
            for (int d = 0; d < D; d++) {
                String sfx = RnnWeights.suffix(k, d);
                deposit(grads, mode, "weight_ih" + sfx, 0, dwih, (long) d * gh * I, (long) gh * I);
                deposit(grads, mode, "weight_hh" + sfx, 0, dwhh, (long) d * gh * P, (long) gh * P);
                if (cfg.bias()) {
                    deposit(grads, mode, "bias_ih" + sfx, 0, db, (long) d * gh, gh);
                    deposit(grads, mode, "bias_hh" + sfx, 0, dbh, (long) d * gh, gh);
                }
                if (proj) deposit(grads, mode, "weight_hr" + sfx, 0, dwhr, (long) d * P * H, (long) P * H);
                if (ln) {
                    deposit(grads, mode, "ln_ih_weight" + sfx, 0, dlnIhW, (long) d * gh, gh);
                    deposit(grads, mode, "ln_ih_bias" + sfx, 0, dlnIhB, (long) d * gh, gh);
                    deposit(grads, mode, "ln_hh_weight" + sfx, 0, dlnHhW, (long) d * gh, gh);
                    deposit(grads, mode, "ln_hh_bias" + sfx, 0, dlnHhB, (long) d * gh, gh);
                }
                if (cfg.peephole()) {
                    deposit(grads, mode, "weight_ci" + sfx, 0, dp, (long) d * 3 * H, H);
                    if (!cfg.coupledGate()) deposit(grads, mode, "weight_cf" + sfx, 0, dp, (long) (d * 3 + 1) * H, H);
                    deposit(grads, mode, "weight_co" + sfx, 0, dp, (long) (d * 3 + 2) * H, H);
                }
            }
            if (k == 0) {
                if (hostCall) dx = DeviceTensor.over(be, dxk, T, B, I);
                else if (!direct) be.copy(dxk, 0, dx.buffer(), dx.offset(), tb * I);
            } else if (!cfg.residualAt(k) && drop.betweenThresh == 0) {
                dout = dxk;
            } else {
                DeviceBuffer next = ws.f32("dout" + (k & 1), tb * I);
                be.launch(Kernels.LAYER_INPUT_BWD, new long[] {I, B, T}, T, B, I, cfg.residualAt(k) ? 1 : 0, lenBuf, dxk,
                        dout, next, drop.seedLo, drop.seedHi, k - 1, drop.betweenThresh, drop.betweenScale);
                dout = next;
            }
        }
        return new DeviceRnnGradients(dx, dh0, dc0);
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
        space.close();
        if (hostGrads != null) hostGrads.close();
        ws.close();
        if (dummy != null) dummy.close();
    }
}
