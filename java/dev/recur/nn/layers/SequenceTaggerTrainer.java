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
 * Trains a {@link SequenceTagger} with an {@link OptimizerConfig} (SGD, Adam or AdamW, global-norm clipping, parameter
 * groups), one {@link #step} per batch: softmax
 * cross-entropy of every step's logits against its tag, averaged over the counted steps. A step at or past its
 * sequence's length carries no loss whatever its tag says, and a tag of {@link #IGNORE} is not counted anywhere.
 * Made by {@link SequenceTagger#trainer}.
 *
 * <p>On a device backend the whole step runs on the device: the recurrent network on device tensors, the output layer
 * over all {@code T·B} steps as one GEMM plus {@code bias_act_fwd}, {@code softmax_xent_fwd_bwd} with the padded steps
 * as padding targets and its mean, the output layer's gradients ({@code col_sum}, GEMMs), the recurrent backward into
 * a device gradient space, a {@link dev.recur.nn.train.DeviceOptimizer} step. Per step the host uploads the batch
 * (x {@code [T,B,I]} as float32, or nothing for a caller's {@link DeviceTensor}; the lengths when given; the tags) and
 * downloads the 4-byte mean loss: one blocking wait. The parameters live on the device while the trainer is open, as
 * {@link SequenceClassifierTrainer} describes: {@link #parameters()} and the tagger's own host calls download them
 * first when a step changed them; declared host writes go up before the next step.
 *
 * <p>On the float64 reference backend a step is the host path ({@link SequenceTagger#forward},
 * {@link SoftmaxCrossEntropy}, {@link SequenceTagger#backward}, {@link GradientClipping#clip}, the host optimizer
 * over the tagger's parameters): the oracle the device path is tested against.
 *
 * <p>Not thread-safe; one trainer per tagger at a time. {@link #close()} downloads the parameters (if a step changed
 * them) and frees every device buffer; closing the tagger closes its open trainer.
 */
public final class SequenceTaggerTrainer extends HeadTrainer {
    /** A tag that is not counted (as every step past a sequence's length is not). */
    public static final int IGNORE = -1;

    private final SequenceTagger head;

    SequenceTaggerTrainer(SequenceTagger head, OptimizerConfig config) {
        super(new HeadTraining(head.params(), head.rnnLayer(), head.outputLayer(), config));
        this.head = head;
    }

    /**
     * One training step from zero states: forward, masked softmax cross-entropy, backward, clipping, the update. Returns the
     * mean cross-entropy over the counted steps before the update (0 when none counts; on a device, the float32 value
     * it computed).
     *
     * @param x       {@code [T, B, I]} time-major inputs
     * @param lengths {@code [B]} each sequence's steps in [1, T], or null for all T
     * @param tags    {@code [T * B]} time-major: the tag of step t of sequence b at {@code t*B + b}, in [0, classes) or
     *                {@link #IGNORE}; entries at {@code t >= lengths[b]} are not read
     * @param seed    dropout seed of this step
     */
    public double step(Tensor x, int[] lengths, int[] tags, long seed) {
        core.checkOpen();
        core.checkX(x);
        int[] targets = targets(tags, lengths, x.dim(0), x.dim(1));
        if (core.device == null) {
            double loss = core.hostStep(() -> {
                try (SequenceTagger.Pass pass = head.forward(x, lengths, seed)) {
                    SoftmaxCrossEntropy.Result r = SoftmaxCrossEntropy.compute(pass.logits(), targets, IGNORE);
                    head.backward(pass, r.dlogits());
                    return r.loss();
                }
            });
            core.stepped();
            return loss;
        }
        return deviceStep(core.device.stageX(x), lengths, targets, seed);
    }

    /** {@link #step(Tensor, int[], int[], long)} on inputs already on the device: nothing of x crosses. */
    public double step(DeviceTensor x, int[] lengths, int[] tags, long seed) {
        core.checkOpen();
        core.checkX(x);
        int[] targets = targets(tags, lengths, x.dim(0), x.dim(1));
        return deviceStep(x, lengths, targets, seed);
    }

    /** The tags with every step past its sequence's length set to {@link #IGNORE}, after checking them. */
    private int[] targets(int[] tags, int[] lengths, int t, int b) {
        HeadTraining.checkLengths(lengths, t, b);
        int c = head.classes();
        if (tags == null || tags.length != t * b) {
            throw new IllegalArgumentException("tags: expected " + (t * b) + " entries (T * B), got " + (tags == null ? "null" : tags.length));
        }
        int[] out = new int[t * b];
        for (int s = 0; s < t; s++) {
            for (int i = 0; i < b; i++) {
                int k = s * b + i;
                if (lengths != null && s >= lengths[i]) {
                    out[k] = IGNORE;
                } else if (tags[k] == IGNORE || (tags[k] >= 0 && tags[k] < c)) {
                    out[k] = tags[k];
                } else {
                    throw new IllegalArgumentException("tags: entry " + k + " (step " + s + " of sequence " + i + ") must be in [0, "
                            + c + ") (classes) or " + IGNORE + ", got " + tags[k]);
                }
            }
        }
        return out;
    }

    private double deviceStep(DeviceTensor x, int[] lengths, int[] targets, long seed) {
        HeadTraining.Device d = core.device;
        DeviceBackend be = d.be;
        core.checkStepCount();
        d.syncIn();
        RnnConfig c = core.rnnConfig();
        int t = x.dim(0), b = x.dim(1), n = t * b, classes = d.classes, w = d.width;
        DeviceTensor len = d.stageLengths(lengths, t, b);
        DeviceBuffer tagBuf = d.scratch("tags", DeviceBuffer.Type.I32, n);
        be.upload(targets, 0, tagBuf, 0, n);
        DeviceBuffer logits = d.scratch("logits", DeviceBuffer.Type.F32, (long) n * classes);
        DeviceBuffer rows = d.scratch("lossRows", DeviceBuffer.Type.F32, n);
        DeviceBuffer dy = d.scratch("dy", DeviceBuffer.Type.F32, (long) n * w);
        DeviceBuffer dx = d.scratch("dx", DeviceBuffer.Type.F32, (long) n * c.inputSize());
        try (DeviceRnnOutput o = head.rnnLayer().forwardTraining(DeviceRnnInput.of(x).withLengths(len), seed)) {
            DeviceTensor y = o.y();
            d.linearFwd(n, y.buffer(), y.offset(), logits);
            TrainKernels.softmaxXentFwdBwd(be, n, classes, IGNORE, logits, tagBuf, rows, logits);
            TrainKernels.softmaxXentMean(be, n, IGNORE, tagBuf, rows, d.mean);
            d.linearBwd(n, y.buffer(), y.offset(), logits, dy);
            try (DeviceRnnGradients g = head.rnnLayer().rnn().backward(o, DeviceTensor.over(be, dy, t, b, w), null, null,
                    d.rnnG, GradMode.SET, DeviceRnnGradients.into(DeviceTensor.over(be, dx, t, b, c.inputSize()), null, null))) {
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
