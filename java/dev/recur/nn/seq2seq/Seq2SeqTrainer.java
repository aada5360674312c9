package dev.recur.nn.seq2seq;

import dev.recur.nn.decode.Decoded;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.Optimizer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.nn.train.SamplingSchedule;
import dev.recur.nn.train.Sgd;

import java.util.Arrays;
import java.util.List;

/**
 * The usual training step of a {@link Seq2Seq}: zero the gradients, forward and backward with the teacher-forcing
 * probability of the schedule at this step, clip by global norm, step the optimizer. Seeded: step {@code i}
 * uses dropout and sampling seed {@code seed + i}.
 *
 * <pre>{@code
 * Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, new Adam(3e-3), SamplingSchedule.constant(1), 5.0, 42);
 * for (int i = 0; i < 2000; i++) trainer.step(nextBatch());
 * double acc = Seq2SeqTrainer.exactMatch(model, heldOutSources, heldOutTargets, 20, 64);
 * }</pre>
 *
 * <p>Or from an {@link OptimizerConfig} (SGD with momentum or Nesterov, Adam, AdamW; clipping; frozen parameters and
 * weight-decay groups by {@link Seq2Seq#parameters()} name):
 * <pre>{@code
 * OptimizerConfig opt = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 3e-3).weightDecay(0.01)
 *         .noDecay(ParamRule.torchNoDecay()).clipNorm(5.0).build();
 * Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, opt, SamplingSchedule.constant(1), 42);
 * }</pre>
 *
 * <p>Clipping on the host path: with an optimizer that carries a configuration (every {@link Adam}, an {@link Sgd}
 * made from one) it is {@link GradientClipping#clip(Parameters, OptimizerConfig)}, PyTorch's coefficient over the
 * non-frozen gradients, as on the device; with a plain {@link Sgd}, {@link GradientClipping#clipByGlobalNorm}.
 */
public final class Seq2SeqTrainer {
    private final Seq2Seq model;
    private final Optimizer optimizer;
    private final SamplingSchedule schedule;
    private final double clipNorm;
    // The optimizer's configuration with this trainer's clipping, or null for a plain Sgd (host only).
    private final OptimizerConfig config;
    private final long seed;
    private long steps;
    private double lastGradNorm = Double.NaN;

    /**
     * @param optimizer an {@link Adam} or {@link Sgd} (one made from an {@link OptimizerConfig} brings its groups; its
     *                  configuration's clipping gives way to {@code clipNorm}), or any other {@link Optimizer} (host only)
     * @param clipNorm  maximum global gradient L2 norm, or 0 for no clipping
     */
    public Seq2SeqTrainer(Seq2Seq model, Optimizer optimizer, SamplingSchedule schedule, double clipNorm, long seed) {
        if (model == null) throw new IllegalArgumentException("model: must not be null");
        if (optimizer == null) throw new IllegalArgumentException("optimizer: must not be null");
        if (schedule == null) throw new IllegalArgumentException("schedule: must not be null");
        if (!(clipNorm >= 0) || !Double.isFinite(clipNorm)) throw new IllegalArgumentException("clipNorm: expected a finite value >= 0, got " + clipNorm);
        this.model = model;
        this.optimizer = optimizer;
        this.schedule = schedule;
        this.clipNorm = clipNorm;
        this.seed = seed;
        OptimizerConfig c = optimizer instanceof Adam a ? a.config() : optimizer instanceof Sgd s ? s.config() : null;
        this.config = c == null ? null : c.withClipNorm(clipNorm > 0 ? clipNorm : Double.POSITIVE_INFINITY);
    }

    /**
     * A trainer with {@code optimizer}'s host optimizer ({@link OptimizerConfig#newHostOptimizer()}), clipping and groups
     * on the host and on the device alike.
     */
    public Seq2SeqTrainer(Seq2Seq model, OptimizerConfig optimizer, SamplingSchedule schedule, long seed) {
        this(model, hostOptimizer(optimizer), schedule, optimizer.clips() ? optimizer.clipNorm() : 0, seed);
    }

    private static Optimizer hostOptimizer(OptimizerConfig optimizer) {
        if (optimizer == null) throw new IllegalArgumentException("optimizer: must not be null");
        return optimizer.newHostOptimizer();
    }

    /** The optimizer configuration this trainer steps with (clipping included), or null for a host-only optimizer. */
    public OptimizerConfig optimizerConfig() {
        return config;
    }

    /**
     * One optimisation step on {@code batch}; returns its loss (before the update).
     *
     * <p>With an optimizer that has a configuration ({@link #optimizerConfig()}: Adam, AdamW, SGD) and a model that {@link Seq2Seq#runsOnDevice() runs on the
     * device} (any configuration on a device backend: attention none, Luong or Bahdanau with a dot, scaled, general or
     * additive score; any bridge; any encoder and decoder network: GRU, LSTM or plain RNN cells, several layers, a
     * bidirectional or projected encoder), the step runs on the device, with teacher forcing or scheduled sampling (a
     * probability below 1: the decoder runs step by step there and {@code scheduled_feed} flips each item's coin, the
     * same coins as the host path's for the step's seed; see {@link Seq2Seq}): the host uploads the batch's ids (and the lengths
     * and mask only for a source whose padded ids cannot tell its length) and downloads the 4-byte loss;
     * parameters, gradients and the optimizer's state stay on the device ({@link Seq2Seq#parameters()} downloads them when
     * read). The loss then counts the tokens but not the correct ones unless {@link #countCorrect(boolean)} asked for
     * them (a host forward of the batch: the parameters come back, and go up again at the next step), and
     * {@link #lastGradNorm()} is NaN (the norm stays on the device). Otherwise the step runs on the host as always.
     */
    public Seq2Seq.Loss step(Seq2SeqBatch batch) {
        if (batch == null) throw new IllegalArgumentException("batch: must not be null");
        double tf = schedule.teacherForcing(steps);
        if (config != null) {
            Seq2SeqDeviceStep device = model.deviceStep();
            if (device != null) {
                checkIds("batch.source", batch.source(), model.config().sourceVocab());
                checkIds("batch.target", batch.target(), model.config().targetVocab());
                int correct = -1;
                if (countCorrect) correct = model.loss(batch, tf, seed + steps).correct();
                double loss = device.step(batch, seed + steps, tf, config, optimizer.steps(), optimizer.learningRate());
                if (optimizer instanceof Adam adam) adam.countStep();
                else ((Sgd) optimizer).countStep();
                lastGradNorm = Double.NaN;
                steps++;
                int tokens = 0;
                for (int id : batch.target()) if (id != model.config().padId()) tokens++;
                return new Seq2Seq.Loss(loss, tokens, correct);
            }
        }
        Parameters p = model.parameters();
        p.zeroGrad();
        Seq2Seq.Loss loss = model.forwardBackward(batch, tf, seed + steps);
        if (config != null) lastGradNorm = GradientClipping.clip(p, config);
        else lastGradNorm = clipNorm > 0 ? GradientClipping.clipByGlobalNorm(p, clipNorm) : GradientClipping.globalNorm(p);
        optimizer.step(p);
        steps++;
        return loss;
    }

    public long steps() {
        return steps;
    }

    private boolean countCorrect;

    /**
     * Whether a step on the device also counts the correctly ranked target tokens ({@link Seq2Seq.Loss#correct()}):
     * off by default, since it costs a host forward of the batch; when off, {@code correct} is -1 on the device path.
     */
    public Seq2SeqTrainer countCorrect(boolean on) {
        this.countCorrect = on;
        return this;
    }

    private static void checkIds(String name, int[] ids, int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) throw new IllegalArgumentException(name + ": entry " + i + " must be in [0, " + vocab + "), got " + ids[i]);
        }
    }

    /** The global gradient norm of the last step, before clipping. */
    public double lastGradNorm() {
        return lastGradNorm;
    }

    public Optimizer optimizer() {
        return optimizer;
    }

    /**
     * The fraction of {@code sources} whose greedy decoding equals the target exactly, decoding
     * {@code batchSize} sources per batch.
     */
    public static double exactMatch(Seq2Seq model, List<int[]> sources, List<int[]> targets, int maxLength, int batchSize) {
        if (sources == null || targets == null || sources.size() != targets.size()) {
            throw new IllegalArgumentException("targets: expected as many sequences as sources");
        }
        if (batchSize <= 0) throw new IllegalArgumentException("batchSize: expected > 0, got " + batchSize);
        if (sources.isEmpty()) return 0;
        int exact = 0;
        for (int from = 0; from < sources.size(); from += batchSize) {
            int to = Math.min(sources.size(), from + batchSize);
            Decoded d = model.greedyTokens(sources.subList(from, to), maxLength);
            for (int i = from; i < to; i++) if (Arrays.equals(targets.get(i), d.tokens().get(i - from))) exact++;
        }
        return exact / (double) sources.size();
    }
}
