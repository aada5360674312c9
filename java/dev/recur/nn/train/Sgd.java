package dev.recur.nn.train;

import dev.recur.nn.layers.Parameters;
import dev.recur.tensor.Tensor;

import java.util.HashMap;
import java.util.Map;

/**
 * Stochastic gradient descent with momentum and decoupled weight decay, as PyTorch's {@code SGD}
 * (dampening 0) but with the decay applied to the weights rather than added to the gradient:
 * <pre>
 *   p   ← p · (1 − lr·wd)
 *   buf ← g                     (first step)
 *   buf ← momentum·buf + g      (later steps)
 *   p   ← p − lr · (nesterov ? g + momentum·buf : buf)
 * </pre>
 * With {@code momentum = 0} this is plain {@code p ← p − lr·g}.
 *
 * <p>Made from an {@link OptimizerConfig} ({@link OptimizerConfig.Kind#SGD}) it is PyTorch's {@code SGD} exactly, as
 * the device's {@code sgd_step}: the weight decay is added to the gradient ({@code d = g + wd·p}), the buffer takes
 * {@code (1 − dampening)·d} after the first step, and the configuration's groups hold (a frozen parameter is skipped
 * and gets no buffer, a no-decay one has {@code wd = 0}, a scaled one {@code lr·scale}).
 */
public final class Sgd implements Optimizer {
    private double lr;
    private final double momentum;
    private final double weightDecay;
    private final boolean nesterov;
    private final OptimizerConfig config;   // null: the decoupled-decay form of the plain constructors
    private final Map<String, double[]> buffers = new HashMap<>();
    private final Map<String, OptimizerConfig.Group> groups = new HashMap<>();
    private long steps;

    public Sgd(double lr, double momentum, double weightDecay, boolean nesterov) {
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
        if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("momentum: expected in [0, 1), got " + momentum);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
        }
        if (nesterov && momentum == 0) throw new IllegalArgumentException("nesterov: needs momentum > 0, got momentum 0");
        this.lr = lr;
        this.momentum = momentum;
        this.weightDecay = weightDecay;
        this.nesterov = nesterov;
        this.config = null;
    }

    /** PyTorch's SGD as {@code config} says, with its groups ({@code config}'s clipping is the trainer's to apply). */
    public Sgd(OptimizerConfig config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (config.kind() != OptimizerConfig.Kind.SGD) {
            throw new IllegalArgumentException("config: expected kind SGD, got " + config.kind() + " (use new Adam(config))");
        }
        this.config = config;
        this.lr = config.lr();
        this.momentum = config.momentum();
        this.weightDecay = config.weightDecay();
        this.nesterov = config.nesterov();
    }

    public Sgd(double lr, double momentum) {
        this(lr, momentum, 0, false);
    }

    @Override
    public void step(Parameters params) {
        if (config != null) {
            torchStep(params);
            return;
        }
        for (String name : params.names()) {
            double[] p = params.value(name).data();
            double[] g = params.grad(name).data();
            if (weightDecay > 0) {
                double f = 1 - lr * weightDecay;
                for (int i = 0; i < p.length; i++) p[i] *= f;
            }
            if (momentum == 0) {
                for (int i = 0; i < p.length; i++) p[i] -= lr * g[i];
                continue;
            }
            double[] buf = buffers.get(name);
            if (buf == null) {
                buf = g.clone();
                buffers.put(name, buf);
            } else {
                for (int i = 0; i < p.length; i++) buf[i] = momentum * buf[i] + g[i];
            }
            for (int i = 0; i < p.length; i++) p[i] -= lr * (nesterov ? g[i] + momentum * buf[i] : buf[i]);
        }
        steps++;
        params.markChanged();
    }

    private void torchStep(Parameters params) {
        double damp = config.dampening();
        for (String name : params.names()) {
            OptimizerConfig.Group group = groups.computeIfAbsent(name, k -> config.group(k, params.value(k).shape()));
            if (group.frozen()) continue;
            double[] p = params.value(name).data();
            double[] g = params.grad(name).data();
            double lr = this.lr * group.lrScale(), wd = group.weightDecay();
            double[] d = new double[p.length];
            for (int i = 0; i < p.length; i++) d[i] = wd != 0 ? g[i] + wd * p[i] : g[i];
            if (momentum != 0) {
                double[] buf = buffers.get(name);
                if (buf == null) {
                    buffers.put(name, buf = d.clone());
                } else {
                    for (int i = 0; i < p.length; i++) buf[i] = momentum * buf[i] + (1 - damp) * d[i];
                }
                for (int i = 0; i < p.length; i++) d[i] = nesterov ? d[i] + momentum * buf[i] : buf[i];
            }
            for (int i = 0; i < p.length; i++) p[i] -= lr * d[i];
        }
        steps++;
        params.markChanged();
    }

    /** The configuration this optimizer follows, or null for the decoupled-decay form of the plain constructors. */
    public OptimizerConfig config() {
        return config;
    }

    /**
     * Counts a step taken elsewhere with this configuration and its own state (a device trainer keeps the momentum
     * buffers on the device).
     */
    public void countStep() {
        steps++;
    }

    /** The momentum buffer of a parameter (a copy), or null before its first step. */
    public Tensor momentumBuffer(Parameters params, String name) {
        double[] b = buffers.get(name);
        return b == null ? null : Tensor.of(b.clone(), params.value(name).shape());
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
}
