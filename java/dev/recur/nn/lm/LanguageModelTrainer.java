package dev.recur.nn.lm;

import dev.recur.nn.Resources;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Kernels;
import dev.recur.backend.TrainKernels;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.DeviceOptimizer;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.Optimizer;
import dev.recur.nn.train.OptimizerConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Trains a {@link LanguageModel} with the {@link Config}'s optimizer (SGD, Adam or AdamW, global-norm clipping,
 * parameter groups), one {@link #step} per batch. Made by {@link LanguageModel#trainer}.
 *
 * <p>On a device backend the whole step runs on the device: embedding ({@code embedding_fwd}/{@code _bwd}), the
 * recurrent network on device tensors, the output projection as a GEMM plus {@code bias_act_fwd}, the fused
 * {@code softmax_xent_fwd_bwd} and its mean, the gradients in device buffers ({@code col_sum} and GEMMs for the output
 * layer), then a {@link DeviceOptimizer} step (clipping over every non-frozen gradient, one update launch per buffer
 * and group). The host
 * uploads the token ids and targets ({@code 8·T·B} bytes) and downloads the 4-byte mean loss: one blocking wait.
 * The parameters live on the device while the trainer is open; {@link LanguageModel#parameters()} (and everything of
 * the model that reads them on the host: save, loss, sampling) downloads them into the host mirror first when a step
 * changed them. Host writes the caller declares ({@link Parameters#markChanged}, {@code load}) are uploaded before the
 * next step; nothing else is ever uploaded again.
 *
 * <p>On the float64 reference backend a step is the host path: {@link LanguageModel#forwardBackward},
 * {@link GradientClipping#clip(Parameters, OptimizerConfig)}, the configuration's host optimizer ({@link Adam} or
 * {@link dev.recur.nn.train.Sgd}). It is the oracle the device path is tested against; the two differ only by float32
 * arithmetic (both clip with PyTorch's coefficient {@code min(1, maxNorm/(norm+1e-6))} over the non-frozen
 * gradients).
 *
 * <p>Not thread-safe; one trainer per model at a time. {@link #close()} downloads the parameters (if a step changed
 * them) and frees every device buffer.
 */
public final class LanguageModelTrainer implements AutoCloseable {

    /**
     * The optimizer of the training: its kind (SGD, Adam, AdamW) and hyperparameters, clipping and parameter groups,
     * named as {@link LanguageModel#parameters()} names them ({@code embedding.weight}, {@code rnn.weight_ih_l0}, ...,
     * {@code output.weight}, {@code output.bias}).
     */
    public record Config(OptimizerConfig optimizer) {
        public Config {
            if (optimizer == null) throw new IllegalArgumentException("optimizer: must not be null");
        }

        /**
         * AdamW (as {@link Adam}) over every parameter, clipped to {@code clipNorm}
         * ({@link Double#POSITIVE_INFINITY}: no clipping).
         */
        public Config(double lr, double beta1, double beta2, double eps, double weightDecay, double clipNorm) {
            this(OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, lr).betas(beta1, beta2).eps(eps).weightDecay(weightDecay)
                    .clipNorm(clipNorm).build());
        }

        /** Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, no weight decay), clipped to {@code clipNorm}. */
        public static Config adam(double lr, double clipNorm) {
            return new Config(lr, 0.9, 0.999, 1e-8, 0, clipNorm);
        }

        public static Config of(OptimizerConfig optimizer) {
            return new Config(optimizer);
        }

        public double lr() {
            return optimizer.lr();
        }

        public double beta1() {
            return optimizer.beta1();
        }

        public double beta2() {
            return optimizer.beta2();
        }

        public double eps() {
            return optimizer.eps();
        }

        public double weightDecay() {
            return optimizer.weightDecay();
        }

        /** The largest global gradient norm, or {@link Double#POSITIVE_INFINITY} for no clipping. */
        public double clipNorm() {
            return optimizer.clipNorm();
        }
    }

    private final LanguageModel lm;
    private final Config config;
    private final Device device;   // null on a host backend
    private final Optimizer hostOptimizer;   // null on a device backend
    private long steps;

    LanguageModelTrainer(LanguageModel lm, Config config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.lm = lm;
        this.config = config;
        if (lm.rnnLayer().rnn().backend() instanceof DeviceBackend be) {
            this.device = new Device(be);
            this.hostOptimizer = null;
        } else {
            this.device = null;
            this.hostOptimizer = config.optimizer().newHostOptimizer();
        }
    }

    public Config config() {
        return config;
    }

    /** Whether steps run on a device (false on the float64 reference, which steps on the host). */
    public boolean onDevice() {
        return device != null;
    }

    /** Steps taken. */
    public long steps() {
        return steps;
    }

    /**
     * One training step on a batch from zero states: forward, backward, clipping, Adam. Returns the mean
     * cross-entropy per counted target before the update (on a device, the float32 value the device computed).
     *
     * @param inputs  {@code [T * B]} time-major input ids
     * @param targets {@code [T * B]} the id to predict at each position (the model's padding id is not counted)
     * @param seed    dropout seed of this step
     */
    public double step(int[] inputs, int[] targets, int steps, int batch, long seed) {
        if (closed) throw new IllegalStateException("trainer: closed");
        if (steps <= 0) throw new IllegalArgumentException("steps: expected > 0, got " + steps);
        if (batch <= 0) throw new IllegalArgumentException("batch: expected > 0, got " + batch);
        checkIds("inputs", inputs, steps * batch, false);
        checkIds("targets", targets, steps * batch, true);
        double loss;
        if (device == null) {
            Parameters p = lm.parameters();
            p.zeroGrad();
            loss = lm.forwardBackward(inputs, targets, steps, batch, null, null, seed).loss();
            GradientClipping.clip(p, config.optimizer());
            hostOptimizer.step(p);
        } else {
            loss = device.step(inputs, targets, steps, batch, seed, this.steps + 1);
        }
        this.steps++;
        return loss;
    }

    private void checkIds(String arg, int[] ids, int n, boolean padAllowed) {
        if (ids == null || ids.length != n) {
            throw new IllegalArgumentException(arg + ": expected " + n + " ids (steps * batch), got " + (ids == null ? "null" : ids.length));
        }
        int v = lm.vocabSize(), pad = lm.padId();
        for (int i = 0; i < n; i++) {
            if ((ids[i] < 0 || ids[i] >= v) && !(padAllowed && ids[i] == pad)) {
                throw new IllegalArgumentException(arg + ": entry " + i + " must be in [0, " + v + "), got " + ids[i]);
            }
        }
    }

    /** Called by the model before it reads its parameters on the host. */
    void pullIfChanged() {
        if (device != null && !closed) device.pullIfChanged();
    }

    private boolean closed;

    /**
     * The device's embedding {@code [V,E]} and output layer {@code [bias V | weight V·H]} for the model's device
     * inference (generation, evaluation), brought up to date with host writes the caller declared, as a step would;
     * null on a host trainer or once closed. Nothing is pulled to the host.
     */
    DeviceBuffer[] deviceParameters() {
        if (device == null || closed) return null;
        return device.current();
    }

    /** Downloads the parameters into the host mirror (if a step changed them) and frees the device buffers. */
    @Override
    public void close() {
        if (closed) return;
        try {
            pullIfChanged();
        } finally {
            closed = true;
            try {
                if (device != null) device.close();
            } finally {
                lm.trainerClosed(this);
            }
        }
    }

    /** The device state: parameters and gradients in three buffers each, the optimizer, plus per-batch scratch. */
    private final class Device implements AutoCloseable {
        private final DeviceBackend be;
        private final int vocab, emb, hid, pad;
        private final List<AutoCloseable> owned = new ArrayList<>();
        // Three parameter buffers: the embedding [V,E]; the output layer as [bias (V) | weight (V,H)] (bias first:
        // col_sum and bias_act take no offset); the RNN's own weight space. With one group throughout, the optimizer
        // updates each with one launch.
        private final DeviceBuffer embP, embG, outP, outG;
        private final WeightSpace rnnP, rnnG;
        private final DeviceBuffer mean;
        private final DeviceOptimizer optimizer;
        private Batch batch;
        private long hostVersion;   // the Parameters version the device holds
        private boolean dirty;      // a step changed the device parameters since the last pull

        Device(DeviceBackend be) {
            this.be = be;
            this.vocab = lm.vocabSize();
            this.emb = lm.embeddingLayer().dim();
            this.hid = lm.rnnConfig().outputWidth();
            this.pad = lm.padId();
            try {
                int ne = vocab * emb, no = vocab + vocab * hid;
                embP = f32(ne);
                embG = f32(ne);
                outP = f32(no);
                outG = f32(no);
                rnnP = lm.rnnLayer().rnn().weightSpace();
                rnnG = lm.rnnLayer().rnn().newGradientSpace(be);
                owned.add(rnnG);
                mean = f32(1);
                optimizer = new DeviceOptimizer(be, config.optimizer());
                owned.add(optimizer);
                optimizer.add(lm.embeddingLayer().weightName(), new int[] {vocab, emb}, embP, embG, 0, ne)
                        .add(lm.outputLayer().biasName(), new int[] {vocab}, outP, outG, 0, vocab)
                        .add(lm.outputLayer().weightName(), new int[] {vocab, hid}, outP, outG, vocab, (long) vocab * hid)
                        .addSpace(lm.rnnLayer().prefix(), rnnP, rnnG)
                        .prepare();
                upload();
            } catch (RuntimeException | Error e) {
                close();
                throw e;
            }
        }

        private DeviceBuffer f32(long n) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n);
            owned.add(b);
            return b;
        }

        /** The host values onto the device: at the start and after a host write the caller declared. */
        private void upload() {
            Parameters p = lm.hostParameters();
            be.uploadDoubles(p.value(lm.embeddingLayer().weightName()).data(), 0, embP, 0, vocab * emb);
            be.uploadDoubles(p.value(lm.outputLayer().biasName()).data(), 0, outP, 0, vocab);
            be.uploadDoubles(p.value(lm.outputLayer().weightName()).data(), 0, outP, vocab, vocab * hid);
            lm.rnnLayer().syncToDevice();
            hostVersion = p.version();
        }

        DeviceBuffer[] current() {
            if (lm.hostParameters().version() != hostVersion) upload();
            return new DeviceBuffer[] {embP, outP};
        }

        void pullIfChanged() {
            if (!dirty) return;
            Parameters p = lm.hostParameters();
            be.downloadDoubles(embP, 0, p.value(lm.embeddingLayer().weightName()).data(), 0, vocab * emb);
            be.downloadDoubles(outP, 0, p.value(lm.outputLayer().biasName()).data(), 0, vocab);
            be.downloadDoubles(outP, vocab, p.value(lm.outputLayer().weightName()).data(), 0, vocab * hid);
            lm.rnnLayer().pullFromDevice();
            p.markChanged();
            lm.rnnLayer().markDeviceCurrent();   // the values it holds are those just pulled: no upload back
            hostVersion = p.version();
            dirty = false;
        }

        double step(int[] inputs, int[] targets, int t, int b, long seed, long step) {
            if (lm.hostParameters().version() != hostVersion) upload();
            int n = t * b;
            if (batch == null || batch.t != t || batch.b != b) {
                if (batch != null) batch.close();
                batch = null;
                batch = new Batch(t, b);
            }
            Batch s = batch;
            be.upload(inputs, 0, s.ids, 0, n);
            be.upload(targets, 0, s.targets, 0, n);
            // Forward: x = emb[ids]; y = rnn(x); logits = y W^T + b; loss and dlogits (in place of the logits).
            TrainKernels.embeddingFwd(be, n, emb, vocab, s.ids, embP, s.x.buffer());
            DeviceBuffer logits = s.logits;
            try (DeviceRnnOutput out = lm.rnnLayer().forwardTraining(DeviceRnnInput.of(s.x), seed)) {
                DeviceTensor y = out.y();
                be.gemm(false, true, n, vocab, hid, 1f, y.buffer(), y.offset(), hid, outP, vocab, hid, 0f, logits, 0, vocab);
                TrainKernels.biasActFwd(be, n, vocab, TrainKernels.Act.IDENTITY, logits, outP, logits);
                TrainKernels.softmaxXentFwdBwd(be, n, vocab, pad, logits, s.targets, s.loss, logits);
                TrainKernels.softmaxXentMean(be, n, pad, s.targets, s.loss, mean);
                // Backward: dbias = column sums, dW = dlogits^T y, dy = dlogits W, then the RNN and the embedding.
                be.launch(Kernels.COL_SUM, new long[] {vocab}, n, vocab, logits, outG, 0f);
                be.gemm(true, false, vocab, hid, n, 1f, logits, 0, vocab, y.buffer(), y.offset(), hid, 0f, outG, vocab, hid);
                be.gemm(false, false, n, hid, vocab, 1f, logits, 0, vocab, outP, vocab, hid, 0f, s.dy.buffer(), 0, hid);
                try (DeviceRnnGradients g = lm.rnnLayer().rnn().backward(out, s.dy, null, null, rnnG, GradMode.SET,
                        DeviceRnnGradients.into(s.dx, null, null))) {
                    TrainKernels.embeddingBwd(be, n, emb, vocab, pad, s.ids, s.dx.buffer(), s.start, s.order, embG, 0f);
                }
            }
            // Clipping and the update, on the device (the clipping scale never leaves it).
            optimizer.setSteps(step - 1);
            optimizer.step();
            lm.rnnLayer().rnn().weightsUpdated();
            dirty = true;
            float[] got = new float[1];
            be.download(mean, 0, got, 0, 1);
            return got[0];
        }

        /** Scratch of one batch shape, reused while the shape stays. */
        private final class Batch implements AutoCloseable {
            final int t, b;
            final DeviceBuffer ids, targets, logits, loss, start, order;
            final DeviceTensor x, dy, dx;
            private final List<AutoCloseable> mine = new ArrayList<>();

            Batch(int t, int b) {
                this.t = t;
                this.b = b;
                int n = t * b;
                try {
                    ids = own(be.allocate(DeviceBuffer.Type.I32, n));
                    targets = own(be.allocate(DeviceBuffer.Type.I32, n));
                    logits = own(be.allocate(DeviceBuffer.Type.F32, (long) n * vocab));
                    loss = own(be.allocate(DeviceBuffer.Type.F32, n));
                    start = own(be.allocate(DeviceBuffer.Type.I32, vocab + 1));
                    order = own(be.allocate(DeviceBuffer.Type.I32, n));
                    x = own(DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, emb));
                    dy = own(DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, hid));
                    dx = own(DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, emb));
                } catch (RuntimeException | Error e) {
                    close();
                    throw e;
                }
            }

            private <T extends AutoCloseable> T own(T c) {
                mine.add(c);
                return c;
            }

            @Override
            public void close() {
                Resources.closeAll(mine);
            }
        }

        @Override
        public void close() {
            try {
                if (batch != null) batch.close();
            } finally {
                batch = null;
                Resources.closeAll(owned);
            }
        }
    }
}
