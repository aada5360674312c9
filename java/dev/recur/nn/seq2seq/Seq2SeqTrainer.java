package dev.recur.nn.seq2seq;

import dev.recur.nn.decode.Decoded;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.Optimizer;
import dev.recur.nn.train.SamplingSchedule;

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
 */
public final class Seq2SeqTrainer {
    private final Seq2Seq model;
    private final Optimizer optimizer;
    private final SamplingSchedule schedule;
    private final double clipNorm;
    private final long seed;
    private long steps;
    private double lastGradNorm = Double.NaN;

    /** @param clipNorm maximum global gradient L2 norm, or 0 for no clipping */
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
    }

    /** One optimisation step on {@code batch}; returns its loss (before the update). */
    public Seq2Seq.Loss step(Seq2SeqBatch batch) {
        Parameters p = model.parameters();
        p.zeroGrad();
        double tf = schedule.teacherForcing(steps);
        Seq2Seq.Loss loss = model.forwardBackward(batch, tf, seed + steps);
        lastGradNorm = clipNorm > 0 ? GradientClipping.clipByGlobalNorm(p, clipNorm) : GradientClipping.globalNorm(p);
        optimizer.step(p);
        steps++;
        return loss;
    }

    public long steps() {
        return steps;
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
            Decoded d = model.greedy(sources.subList(from, to), maxLength);
            for (int i = from; i < to; i++) if (Arrays.equals(targets.get(i), d.tokens().get(i - from))) exact++;
        }
        return exact / (double) sources.size();
    }
}
