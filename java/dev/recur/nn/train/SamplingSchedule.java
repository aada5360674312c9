package dev.recur.nn.train;

/**
 * The probability of feeding the ground-truth token (teacher forcing) at training step {@code i}, for
 * scheduled sampling (Bengio et al. 2015); with the complementary probability the decoder is fed its own
 * previous prediction (its argmax). 1 everywhere is pure teacher forcing.
 *
 * <p>Each item's coin at each decoder step is a counter-based uniform ({@code TrainKernels.sampleUniform} of the
 * step's sampling seed, the decoder step and the item) compared with the probability: no generator state, so the
 * {@code Seq2Seq} host path and the device step ({@code scheduled_feed}) draw the same coins for one seed.
 */
@FunctionalInterface
public interface SamplingSchedule {
    /** Probability in [0, 1] of teacher forcing at step {@code step >= 0}. */
    double teacherForcing(long step);

    /** Always {@code p}. */
    static SamplingSchedule constant(double p) {
        checkProbability("p", p);
        return step -> p;
    }

    /** {@code max(min, start - slope·i)}: linear decay from {@code start} down to {@code min}. */
    static SamplingSchedule linear(double start, double slope, double min) {
        checkProbability("start", start);
        checkProbability("min", min);
        if (!(slope >= 0)) throw new IllegalArgumentException("slope: expected >= 0, got " + slope);
        return step -> Math.max(min, start - slope * step);
    }

    /** {@code k^i} with {@code k < 1}: exponential decay. */
    static SamplingSchedule exponential(double k) {
        if (!(k > 0 && k <= 1)) throw new IllegalArgumentException("k: expected in (0, 1], got " + k);
        return step -> Math.pow(k, step);
    }

    /** {@code k / (k + exp(i/k))} with {@code k >= 1}: inverse sigmoid decay. */
    static SamplingSchedule inverseSigmoid(double k) {
        if (!(k >= 1)) throw new IllegalArgumentException("k: expected >= 1, got " + k);
        return step -> k / (k + Math.exp(step / k));
    }

    private static void checkProbability(String name, double p) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException(name + ": expected a probability in [0, 1], got " + p);
    }
}
