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
 * With {@code wd = 0} it is plain Adam. Made from an {@link OptimizerConfig} ({@link OptimizerConfig.Kind#ADAM} or
 * {@code ADAMW}) it follows that configuration's groups: a frozen parameter is skipped (no moments, value untouched),
 * a no-decay parameter has {@code wd = 0}, a scaled one {@code lr·scale}; {@code ADAM} adds {@code wd·p} to the
 * gradient instead of decaying the weights (PyTorch's {@code Adam}). The constructors without a configuration are
 * AdamW over every parameter.
 */
public final class Adam implements Optimizer {
    private double lr;
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final OptimizerConfig config;
    private final Map<String, double[][]> moments = new HashMap<>();
    private final Map<String, OptimizerConfig.Group> groups = new HashMap<>();
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
        this.config = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, lr).betas(beta1, beta2).eps(eps)
                .weightDecay(weightDecay).build();
    }

    /** Adam or AdamW as {@code config} says, with its groups ({@code config}'s clipping is the trainer's to apply). */
    public Adam(OptimizerConfig config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (config.kind() == OptimizerConfig.Kind.SGD) {
            throw new IllegalArgumentException("config: expected kind ADAM or ADAMW, got SGD (use new Sgd(config))");
        }
        this.config = config;
        this.lr = config.lr();
        this.beta1 = config.beta1();
        this.beta2 = config.beta2();
        this.eps = config.eps();
        this.weightDecay = config.weightDecay();
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
        boolean decoupled = config.kind() == OptimizerConfig.Kind.ADAMW;
        for (String name : params.names()) {
            OptimizerConfig.Group group = groups.computeIfAbsent(name, k -> config.group(k, params.value(k).shape()));
            if (group.frozen()) continue;
            double[] p = params.value(name).data();
            double[] g = params.grad(name).data();
            double[][] mv = moments.computeIfAbsent(name, k -> new double[][] {new double[p.length], new double[p.length]});
            double[] m = mv[0], v = mv[1];
            double lr = this.lr * group.lrScale(), wd = group.weightDecay();
            double decay = 1 - lr * wd;
            for (int i = 0; i < p.length; i++) {
                double gi = g[i];
                if (wd > 0) {
                    if (decoupled) p[i] *= decay;
                    else gi += wd * p[i];
                }
                m[i] = beta1 * m[i] + (1 - beta1) * gi;
                v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
                p[i] -= lr * (m[i] / c1) / (Math.sqrt(v[i] / c2) + eps);
            }
        }
        params.markChanged();
    }

    /** The configuration this optimizer follows (for the plain constructors: AdamW over every parameter, no clipping). */
    public OptimizerConfig config() {
        return config;
    }

    /** Whether {@code name} has moments yet (a frozen parameter never does). */
    public boolean hasMoments(String name) {
        return moments.containsKey(name);
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
