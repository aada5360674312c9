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
import dev.recur.nn.train.GradientClipping;

import java.util.ArrayList;
import java.util.List;

/**
 * Trains a {@link LanguageModel} with Adam(W) and global-norm clipping, one {@link #step} per batch. Made by
 * {@link LanguageModel#trainer}.
 *
 * <p>On a device backend the whole step runs on the device: embedding ({@code embedding_fwd}/{@code _bwd}), the
 * recurrent network on device tensors, the output projection as a GEMM plus {@code bias_act_fwd}, the fused
 * {@code softmax_xent_fwd_bwd} and its mean, the gradients in device buffers ({@code col_sum} and GEMMs for the output
 * layer), {@code gradNorm} clipping over every gradient and one {@code adam_step} per parameter buffer. The host
 * uploads the token ids and targets ({@code 8·T·B} bytes) and downloads the 4-byte mean loss: one blocking wait.
 * The parameters live on the device while the trainer is open; {@link LanguageModel#parameters()} (and everything of
 * the model that reads them on the host: save, loss, sampling) downloads them into the host mirror first when a step
 * changed them. Host writes the caller declares ({@link Parameters#markChanged}, {@code load}) are uploaded before the
 * next step; nothing else is ever uploaded again.
 *
 * <p>On the float64 reference backend a step is the host path: {@link LanguageModel#forwardBackward},
 * {@link GradientClipping#clipByGlobalNorm}, {@link Adam#step}. It is the oracle the device path is tested against;
 * the two differ only by float32 arithmetic and by the clipping coefficient, which the device computes as PyTorch's
 * {@code clip_grad_norm_} does ({@code maxNorm/(norm+1e-6)}, a relative 1e-6/norm from the host's {@code maxNorm/norm}).
 *
 * <p>Not thread-safe; one trainer per model at a time. {@link #close()} downloads the parameters (if a step changed
 * them) and frees every device buffer.
 */
public final class LanguageModelTrainer implements AutoCloseable {

    /**
     * Adam(W) hyperparameters (as {@link Adam}) and the global gradient norm to clip to.
     *
     * @param clipNorm the largest global gradient norm, or {@link Double#POSITIVE_INFINITY} for no clipping
     */
    public record Config(double lr, double beta1, double beta2, double eps, double weightDecay, double clipNorm) {
        public Config {
            if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
            if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1: expected in [0, 1), got " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2: expected in [0, 1), got " + beta2);
            if (!(eps > 0) || !Double.isFinite(eps)) throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
            if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
                throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
            }
            if (!(clipNorm > 0)) throw new IllegalArgumentException("clipNorm: expected > 0 (infinity: no clipping), got " + clipNorm);
        }

        /** Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, no weight decay), clipped to {@code clipNorm}. */
        public static Config adam(double lr, double clipNorm) {
            return new Config(lr, 0.9, 0.999, 1e-8, 0, clipNorm);
        }
    }

    private final LanguageModel lm;
    private final Config config;
    private final Device device;   // null on a host backend
    private final Adam hostAdam;   // null on a device backend
    private long steps;

    LanguageModelTrainer(LanguageModel lm, Config config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.lm = lm;
        this.config = config;
        if (lm.rnnLayer().rnn().backend() instanceof DeviceBackend be) {
            this.device = new Device(be);
            this.hostAdam = null;
        } else {
            this.device = null;
            this.hostAdam = new Adam(config.lr(), config.beta1(), config.beta2(), config.eps(), config.weightDecay());
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
            if (Double.isFinite(config.clipNorm())) GradientClipping.clipByGlobalNorm(p, config.clipNorm());
            hostAdam.step(p);
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

    /** The device state: parameters, gradients and Adam moments in three buffers each, plus per-batch scratch. */
    private final class Device implements AutoCloseable {
        private final DeviceBackend be;
        private final int vocab, emb, hid, pad;
        private final List<AutoCloseable> owned = new ArrayList<>();
        // Three parameter buffers, each updated by one adam_step launch: the embedding [V,E]; the output layer as
        // [bias (V) | weight (V,H)] (bias first: col_sum and bias_act take no offset); the RNN's own weight space.
        private final DeviceBuffer embP, embG, embM, embV, outP, outG, outM, outV, rnnM, rnnV;
        private final WeightSpace rnnP, rnnG;
        private final DeviceBuffer mean, parts, norm, scale;
        private final int rnnN;
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
                embM = zeros(ne);
                embV = zeros(ne);
                outP = f32(no);
                outG = f32(no);
                outM = zeros(no);
                outV = zeros(no);
                rnnP = lm.rnnLayer().rnn().weightSpace();
                rnnG = lm.rnnLayer().rnn().newGradientSpace(be);
                owned.add(rnnG);
                rnnN = (int) rnnP.flat().size();
                // adam_step takes one offset for p, g, m and v: the spaces must start their buffers (allocate's do).
                if (rnnP.flat().offset() != 0 || rnnG.flat().offset() != 0) {
                    throw new IllegalStateException("trainer: expected the RNN weight and gradient spaces at offset 0 of "
                            + "their buffers, got " + rnnP.flat().offset() + " and " + rnnG.flat().offset());
                }
                rnnM = zeros(rnnN);
                rnnV = zeros(rnnN);
                mean = f32(1);
                norm = f32(1);
                scale = f32(1);
                parts = f32(TrainKernels.normParts(ne) + TrainKernels.normParts(no) + TrainKernels.normParts(rnnN));
                be.fill(scale, 0, 1, 1.0);   // stays 1 without clipping
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

        private DeviceBuffer zeros(long n) {
            DeviceBuffer b = f32(n);
            be.fill(b, 0, n, 0.0);
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
            // Clipping: one norm over the three gradient buffers; the scale stays on the device for Adam.
            if (Double.isFinite(config.clipNorm())) {
                int q = TrainKernels.gradNormPartial(be, embG, 0, vocab * emb, parts, 0);
                q += TrainKernels.gradNormPartial(be, outG, 0, vocab + vocab * hid, parts, q);
                q += TrainKernels.gradNormPartial(be, rnnG.flat().buffer(), (int) rnnG.flat().offset(), rnnN, parts, q);
                TrainKernels.gradClipScale(be, parts, q, (float) config.clipNorm(), norm, scale);
            }
            if (step > Integer.MAX_VALUE) throw new IllegalStateException("trainer: more than " + Integer.MAX_VALUE + " steps");
            adam(embP, embG, embM, embV, vocab * emb, (int) step);
            adam(outP, outG, outM, outV, vocab + vocab * hid, (int) step);
            adam(rnnP.flat().buffer(), rnnG.flat().buffer(), rnnM, rnnV, rnnN, (int) step);
            lm.rnnLayer().rnn().weightsUpdated();
            dirty = true;
            float[] got = new float[1];
            be.download(mean, 0, got, 0, 1);
            return got[0];
        }

        private void adam(DeviceBuffer p, DeviceBuffer g, DeviceBuffer m, DeviceBuffer v, int n, int step) {
            TrainKernels.adamStep(be, p, g, m, v, scale, 0, n, step, (float) config.lr(), (float) config.beta1(),
                    (float) config.beta2(), (float) config.eps(), (float) config.weightDecay(), true);
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
