package dev.recur.nn.layers;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.TrainKernels;
import dev.recur.config.RnnConfig;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

/**
 * Trains a {@link SequenceClassifier} with an {@link OptimizerConfig} (SGD, Adam or AdamW, global-norm clipping, parameter groups), one step per batch: {@link #step} with
 * class labels (softmax cross-entropy) or {@link #stepRegression} with real targets (mean squared error over every
 * output, {@link MeanSquaredError}'s definition: a classifier with one output is a regression head). Made by
 * {@link SequenceClassifier#trainer}.
 *
 * <p>On a device backend the whole step runs on the device: the recurrent network on device tensors, the pooling
 * ({@code pool_mean_*}, {@code pool_max_*}, or {@code copy_strided} of the top layer's final states for
 * {@link Pooling#LAST}), the output layer as a GEMM plus {@code bias_act_fwd}, the fused {@code softmax_xent_fwd_bwd}
 * and its mean or {@code mse_fwd_bwd}, the output layer's gradients ({@code col_sum}, GEMMs), the recurrent backward
 * into a device gradient space, a {@link dev.recur.nn.train.DeviceOptimizer} step (clipping and one update launch per
 * run of parameters in the same group). Per step the host uploads the batch (x {@code [T,B,I]} as float32, or nothing for a caller's
 * {@link DeviceTensor}; the lengths when given; the labels or targets) and downloads the 4-byte mean loss: one
 * blocking wait. The parameters live on the device while the trainer is open; {@link #parameters()} and the
 * classifier's own host calls ({@link SequenceClassifier#predict}, {@link SequenceClassifier#forward}) download
 * them into the host mirror first when a step changed them. Reading the {@link Parameters} object directly does not:
 * it is current after those calls and after {@link #close()}. Host writes the caller declares
 * ({@link Parameters#markChanged}, {@code load}) are uploaded before the next step. The check is the version of the
 * whole {@link Parameters}: a host optimizer stepping another module registered there also re-uploads this head
 * (correct, but {@code 4·P} bytes per step); give such a module its own {@link Parameters}.
 *
 * <p>On the float64 reference backend a step is the host path: {@link SequenceClassifier#forward} and
 * {@link SequenceClassifier#backward}, {@link GradientClipping#clip} and the host optimizer over the classifier's
 * parameters. It is the oracle the device path is tested against; they differ by float32 arithmetic and by the
 * clipping coefficient, which the device computes as PyTorch's {@code clip_grad_norm_} ({@code maxNorm/(norm+1e-6)}).
 *
 * <p>Not thread-safe; one trainer per classifier at a time. {@link #close()} downloads the parameters (if a step
 * changed them) and frees every device buffer; closing the classifier closes its open trainer.
 */
public final class SequenceClassifierTrainer extends HeadTrainer {
    private final SequenceClassifier head;

    SequenceClassifierTrainer(SequenceClassifier head, OptimizerConfig config) {
        super(new HeadTraining(head.params(), head.rnnLayer(), head.outputLayer(), config));
        this.head = head;
    }

    /**
     * One classification step from zero states: forward, softmax cross-entropy against {@code labels}, backward,
     * clipping, the update. Returns the mean cross-entropy before the update (on a device, the float32 value it computed).
     *
     * @param x       {@code [T, B, I]} time-major inputs
     * @param lengths {@code [B]} each sequence's steps in [1, T], or null for all T
     * @param labels  {@code [B]} the class of each sequence, in [0, classes)
     * @param seed    dropout seed of this step
     */
    public double step(Tensor x, int[] lengths, int[] labels, long seed) {
        core.checkOpen();
        core.checkX(x);
        int t = x.dim(0), b = x.dim(1);
        HeadTraining.checkLengths(lengths, t, b);
        checkLabels(labels, b);
        if (core.device == null) return hostStep(x, lengths, labels, null, seed);
        return deviceStep(core.device.stageX(x), lengths, labels, null, seed);
    }

    /** {@link #step(Tensor, int[], int[], long)} on inputs already on the device: nothing of x crosses. */
    public double step(DeviceTensor x, int[] lengths, int[] labels, long seed) {
        core.checkOpen();
        core.checkX(x);
        int t = x.dim(0), b = x.dim(1);
        HeadTraining.checkLengths(lengths, t, b);
        checkLabels(labels, b);
        return deviceStep(x, lengths, labels, null, seed);
    }

    /**
     * One regression step: the outputs {@code [B, C]} against {@code targets} by mean squared error over all
     * {@code B·C} of them. Returns that mean before the update.
     *
     * @param targets {@code [B * C]} row-major, finite
     */
    public double stepRegression(Tensor x, int[] lengths, double[] targets, long seed) {
        core.checkOpen();
        core.checkX(x);
        int t = x.dim(0), b = x.dim(1);
        HeadTraining.checkLengths(lengths, t, b);
        checkTargets(targets, b);
        if (core.device == null) return hostStep(x, lengths, null, targets, seed);
        return deviceStep(core.device.stageX(x), lengths, null, targets, seed);
    }

    /** {@link #stepRegression(Tensor, int[], double[], long)} on inputs already on the device. */
    public double stepRegression(DeviceTensor x, int[] lengths, double[] targets, long seed) {
        core.checkOpen();
        core.checkX(x);
        int t = x.dim(0), b = x.dim(1);
        HeadTraining.checkLengths(lengths, t, b);
        checkTargets(targets, b);
        return deviceStep(x, lengths, null, targets, seed);
    }

    private void checkLabels(int[] labels, int b) {
        int c = head.classes();
        if (labels == null || labels.length != b) {
            throw new IllegalArgumentException("labels: expected " + b + " entries (B), got " + (labels == null ? "null" : labels.length));
        }
        for (int i = 0; i < b; i++) {
            if (labels[i] < 0 || labels[i] >= c) {
                throw new IllegalArgumentException("labels: entry " + i + " must be in [0, " + c + ") (classes), got " + labels[i]);
            }
        }
    }

    private void checkTargets(double[] targets, int b) {
        int n = b * head.classes();
        if (targets == null || targets.length != n) {
            throw new IllegalArgumentException("targets: expected " + n + " values (B * outputs), got "
                    + (targets == null ? "null" : targets.length));
        }
        for (int i = 0; i < n; i++) {
            if (!Double.isFinite(targets[i])) throw new IllegalArgumentException("targets: value " + i + " must be finite, got " + targets[i]);
        }
    }

    private double hostStep(Tensor x, int[] lengths, int[] labels, double[] targets, long seed) {
        double loss = core.hostStep(() -> {
            try (SequenceClassifier.Pass pass = head.forward(x, lengths, seed)) {
                Tensor dlogits;
                double l;
                if (labels != null) {
                    SoftmaxCrossEntropy.Result r = SoftmaxCrossEntropy.compute(pass.logits(), labels, -1);
                    l = r.loss();
                    dlogits = r.dlogits();
                } else {
                    MeanSquaredError.Result r = MeanSquaredError.compute(pass.logits(),
                            Tensor.of(targets.clone(), pass.logits().shape()));
                    l = r.loss();
                    dlogits = r.dprediction();
                }
                head.backward(pass, dlogits);
                return l;
            }
        });
        core.stepped();
        return loss;
    }

    private double deviceStep(DeviceTensor x, int[] lengths, int[] labels, double[] targets, long seed) {
        HeadTraining.Device d = core.device;
        DeviceBackend be = d.be;
        core.checkStepCount();
        d.syncIn();
        RnnConfig c = core.rnnConfig();
        int t = x.dim(0), b = x.dim(1), classes = d.classes, width = d.width, w = c.outputWidth();
        Pooling pooling = head.pooling();
        DeviceTensor len = d.stageLengths(lengths, t, b);
        DeviceBuffer lenBuf = d.scratch("lengths", DeviceBuffer.Type.I32, b);
        DeviceBuffer pooled = d.scratch("pooled", DeviceBuffer.Type.F32, (long) b * width);
        DeviceBuffer logits = d.scratch("logits", DeviceBuffer.Type.F32, (long) b * classes);
        DeviceBuffer dpooled = d.scratch("dpooled", DeviceBuffer.Type.F32, (long) b * width);
        DeviceBuffer dx = d.scratch("dx", DeviceBuffer.Type.F32, (long) t * b * c.inputSize());
        DeviceBuffer dlogits, labelBuf = null, targetBuf = null;
        if (labels != null) {
            labelBuf = d.scratch("labels", DeviceBuffer.Type.I32, b);
            be.upload(labels, 0, labelBuf, 0, b);
            dlogits = logits;   // softmax_xent_fwd_bwd writes the gradient over the logits
        } else {
            targetBuf = d.scratch("targets", DeviceBuffer.Type.F32, (long) b * classes);
            be.uploadDoubles(targets, 0, targetBuf, 0, b * classes);
            dlogits = d.scratch("dlogits", DeviceBuffer.Type.F32, (long) b * classes);
        }
        DeviceRnnInput in = DeviceRnnInput.of(x).withLengths(len);
        try (DeviceRnnOutput o = head.rnnLayer().forwardTraining(in, seed)) {
            // Pool y [T,B,W] (or the top layer's final states) to pooled [B, width].
            DeviceTensor y = o.y();
            DeviceBuffer idx = null;
            int dirs = c.directions(), h = c.outSize(), top = (c.numLayers() - 1) * dirs;
            switch (pooling) {
                case LAST -> {
                    DeviceTensor hN = o.hN();
                    for (int dir = 0; dir < dirs; dir++) {
                        TrainKernels.copyStrided(be, b, h, hN.buffer(), (int) (hN.offset() + (long) (top + dir) * b * h), h,
                                pooled, dir * h, width);
                    }
                }
                case MEAN -> TrainKernels.poolFwd(be, TrainKernels.Pool.MEAN, t, b, w, y.buffer(), (int) y.offset(), lenBuf,
                        pooled, null);
                case MAX -> {
                    idx = d.scratch("argmax", DeviceBuffer.Type.I32, (long) b * w);
                    TrainKernels.poolFwd(be, TrainKernels.Pool.MAX, t, b, w, y.buffer(), (int) y.offset(), lenBuf, pooled, idx);
                }
            }
            d.linearFwd(b, pooled, 0, logits);
            if (labels != null) {
                DeviceBuffer rows = d.scratch("lossRows", DeviceBuffer.Type.F32, b);
                TrainKernels.softmaxXentFwdBwd(be, b, classes, -1, logits, labelBuf, rows, logits);
                TrainKernels.softmaxXentMean(be, b, -1, labelBuf, rows, d.mean);
            } else {
                TrainKernels.mseFwdBwd(be, b * classes, logits, targetBuf, dlogits, d.mean);
            }
            d.linearBwd(b, pooled, 0, dlogits, dpooled);
            // The pooling's backward: dy [T,B,W] for MEAN / MAX, dhN [L*D,B,H] (the top layer's slots) for LAST.
            DeviceTensor dy = null, dhN = null;
            switch (pooling) {
                case LAST -> {
                    DeviceBuffer g = d.scratch("dhN", DeviceBuffer.Type.F32, (long) c.numLayers() * dirs * b * h);
                    be.fill(g, 0, g.size(), 0.0);
                    for (int dir = 0; dir < dirs; dir++) {
                        TrainKernels.copyStrided(be, b, h, dpooled, dir * h, width, g, (top + dir) * b * h, h);
                    }
                    dhN = DeviceTensor.over(be, g, c.numLayers() * dirs, b, h);
                }
                case MEAN, MAX -> {
                    DeviceBuffer g = d.scratch("dy", DeviceBuffer.Type.F32, (long) t * b * w);
                    if (pooling == Pooling.MEAN) TrainKernels.poolBwd(be, TrainKernels.Pool.MEAN, t, b, w, lenBuf, null, dpooled, g, 0);
                    else TrainKernels.poolBwd(be, TrainKernels.Pool.MAX, t, b, w, null, idx, dpooled, g, 0);
                    dy = DeviceTensor.over(be, g, t, b, w);
                }
            }
            try (DeviceRnnGradients gr = head.rnnLayer().rnn().backward(o, dy, dhN, null, d.rnnG, GradMode.SET,
                    DeviceRnnGradients.into(DeviceTensor.over(be, dx, t, b, c.inputSize()), null, null))) {
                // dx is not used: the inputs are data, not parameters.
            }
        }
        d.optimize();
        core.stepped();
        return d.readLoss();
    }

    @Override
    void closed() {
        head.trainerClosed(this);
    }
}
