package dev.recur.nn.train;

import dev.recur.nn.layers.Parameters;

import java.util.HashMap;
import java.util.Map;

/**
 * Adam (Kingma and Ba) with bias correction and optional decoupled weight decay (AdamW, Loshchilov and
 * Hutter), as PyTorch's {@code AdamW} computes it at step {@code t = 1, 2, ...}:
 * <pre>
 *   p ← p · (1 − lr·wd)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
 * </pre>
 * With {@code wd = 0} it is plain Adam.
 */
public final class Adam implements Optimizer {
    private double lr;
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Map<String, double[][]> moments = new HashMap<>();
    private long steps;

    public Adam(double lr, double beta1, double beta2, double eps, double weightDecay) {
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1: expected in [0, 1), got " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2: expected in [0, 1), got " + beta2);
        if (!(eps > 0)) throw new IllegalArgumentException("eps: expected > 0, got " + eps);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
        }
        this.lr = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
    }

    /** Adam with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, no weight decay. */
    public Adam(double lr) {
        this(lr, 0.9, 0.999, 1e-8, 0);
    }

    /** AdamW with PyTorch's default β and ε. */
    public static Adam adamW(double lr, double weightDecay) {
        return new Adam(lr, 0.9, 0.999, 1e-8, weightDecay);
    }

    @Override
    public void step(Parameters params) {
        steps++;
        double c1 = 1 - Math.pow(beta1, steps);
        double c2 = 1 - Math.pow(beta2, steps);
        for (String name : params.names()) {
            double[] p = params.value(name).data();
            double[] g = params.grad(name).data();
            double[][] mv = moments.computeIfAbsent(name, k -> new double[][] {new double[p.length], new double[p.length]});
            double[] m = mv[0], v = mv[1];
            double decay = 1 - lr * weightDecay;
            for (int i = 0; i < p.length; i++) {
                if (weightDecay > 0) p[i] *= decay;
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / (Math.sqrt(v[i] / c2) + eps);
            }
        }
        params.markChanged();
    }

    public double beta1() {
        return beta1;
    }

    public double beta2() {
        return beta2;
    }

    public double eps() {
        return eps;
    }

    public double weightDecay() {
        return weightDecay;
    }

    @Override
    public double learningRate() {
        return lr;
    }

    @Override
    public void setLearningRate(double lr) {
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
        this.lr = lr;
    }

    @Override
    public long steps() {
        return steps;
    }

    /**
     * Counts a step taken elsewhere with these hyperparameters and its own moments (a device trainer keeps them on the
     * device and takes its bias corrections from {@link #steps()}).
     */
    public void countStep() {
        steps++;
    }
}
