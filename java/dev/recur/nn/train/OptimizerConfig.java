package dev.recur.nn.train;

import java.util.List;

/**
 * What a trainer optimizes with, on the host ({@link #newHostOptimizer()}: {@link Sgd} or {@link Adam}) and on a
 * device ({@link DeviceOptimizer}), with the same meaning in both: the update rule and its hyperparameters, global-norm
 * clipping, and parameter groups decided by name.
 *
 * <ul>
 *   <li>{@link Kind#SGD}: PyTorch's {@code SGD}: {@code d = g + wd·p}; with momentum {@code buf = d} at the first
 *       step, then {@code buf = μ·buf + (1 − dampening)·d}, {@code d = nesterov ? d + μ·buf : buf}; {@code p −= lr·d}.</li>
 *   <li>{@link Kind#ADAM}: PyTorch's {@code Adam}, weight decay as L2 ({@code g + wd·p} enters the moments).</li>
 *   <li>{@link Kind#ADAMW}: PyTorch's {@code AdamW}, decoupled decay {@code p ·= 1 − lr·wd} before the update.</li>
 * </ul>
 *
 * <p><b>Groups.</b> For each parameter (by its {@link dev.recur.nn.layers.Parameters} name and shape): a parameter
 * {@link #frozen} matches is never updated, gets no optimizer state and its gradient does not count in the clipping
 * norm (PyTorch's {@code clip_grad_norm_} over the optimizer's parameters, which a frozen parameter is not among); a
 * parameter {@link #noDecay} matches has weight decay 0 ({@link ParamRule#torchNoDecay()} is PyTorch's usual grouping);
 * the first of {@link #lrScales} that matches multiplies its learning rate (so a schedule that sets the base rate moves
 * every group with it).
 *
 * <p><b>Clipping.</b> When {@link #clipNorm} is finite, every counted gradient is scaled by PyTorch's coefficient
 * {@code min(1, clipNorm / (norm + 1e-6))} before the update, on the host and on the device alike.
 *
 * @param clipNorm the largest global gradient norm, {@link Double#POSITIVE_INFINITY} for no clipping
 * @param lrScales learning-rate multipliers by rule, first match wins
 */
public record OptimizerConfig(Kind kind, double lr, double beta1, double beta2, double eps, double momentum,
                              double dampening, boolean nesterov, double weightDecay, double clipNorm,
                              ParamRule frozen, ParamRule noDecay, List<LrScale> lrScales) {

    public enum Kind { SGD, ADAM, ADAMW }

    /** A learning-rate multiplier for the parameters {@code rule} matches. */
    public record LrScale(ParamRule rule, double scale) {
        public LrScale {
            if (rule == null) throw new IllegalArgumentException("rule: must not be null");
            if (!(scale > 0) || !Double.isFinite(scale)) throw new IllegalArgumentException("scale: expected a finite value > 0, got " + scale);
        }
    }

    /** How one parameter is optimized under a configuration. */
    public record Group(boolean frozen, double lrScale, double weightDecay) {}

    public OptimizerConfig {
        if (kind == null) throw new IllegalArgumentException("kind: must not be null");
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1: expected in [0, 1), got " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2: expected in [0, 1), got " + beta2);
        if (!(eps > 0) || !Double.isFinite(eps)) throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
        if (!(momentum >= 0 && momentum < 1)) throw new IllegalArgumentException("momentum: expected in [0, 1), got " + momentum);
        if (!(dampening >= 0 && dampening <= 1)) throw new IllegalArgumentException("dampening: expected in [0, 1], got " + dampening);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
        }
        if (!(clipNorm > 0)) throw new IllegalArgumentException("clipNorm: expected > 0 (infinity: no clipping), got " + clipNorm);
        if (kind != Kind.SGD && (momentum != 0 || dampening != 0 || nesterov)) {
            throw new IllegalArgumentException("momentum: momentum, dampening and nesterov are SGD's; expected 0, 0, false for "
                    + kind + ", got " + momentum + ", " + dampening + ", " + nesterov);
        }
        if (nesterov && (momentum == 0 || dampening != 0)) {
            throw new IllegalArgumentException("nesterov: needs momentum > 0 and dampening 0 (as PyTorch), got momentum "
                    + momentum + ", dampening " + dampening);
        }
        if (frozen == null) throw new IllegalArgumentException("frozen: must not be null (ParamRule.none() for no frozen parameter)");
        if (noDecay == null) throw new IllegalArgumentException("noDecay: must not be null (ParamRule.none() to decay every parameter)");
        if (lrScales == null) throw new IllegalArgumentException("lrScales: must not be null");
        for (int i = 0; i < lrScales.size(); i++) {
            if (lrScales.get(i) == null) throw new IllegalArgumentException("lrScales: entry " + i + " must not be null");
        }
        lrScales = List.copyOf(lrScales);
    }

    /** A builder of {@code kind} with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, no momentum, decay or clipping. */
    public static Builder builder(Kind kind, double lr) {
        return new Builder(kind, lr);
    }

    /** Plain SGD. */
    public static OptimizerConfig sgd(double lr) {
        return builder(Kind.SGD, lr).build();
    }

    /** Adam with PyTorch's defaults. */
    public static OptimizerConfig adam(double lr) {
        return builder(Kind.ADAM, lr).build();
    }

    /** AdamW with PyTorch's default β and ε. */
    public static OptimizerConfig adamW(double lr, double weightDecay) {
        return builder(Kind.ADAMW, lr).weightDecay(weightDecay).build();
    }

    public Builder toBuilder() {
        Builder b = new Builder(kind, lr);
        b.beta1 = beta1;
        b.beta2 = beta2;
        b.eps = eps;
        b.momentum = momentum;
        b.dampening = dampening;
        b.nesterov = nesterov;
        b.weightDecay = weightDecay;
        b.clipNorm = clipNorm;
        b.frozen = frozen;
        b.noDecay = noDecay;
        b.lrScales = new java.util.ArrayList<>(lrScales);
        return b;
    }

    /** This configuration clipping at {@code clipNorm} ({@link Double#POSITIVE_INFINITY}: not at all). */
    public OptimizerConfig withClipNorm(double clipNorm) {
        return toBuilder().clipNorm(clipNorm).build();
    }

    /** Whether clipping is on. */
    public boolean clips() {
        return Double.isFinite(clipNorm);
    }

    /** The group of the parameter {@code name} of shape {@code shape}. */
    public Group group(String name, int[] shape) {
        if (name == null) throw new IllegalArgumentException("name: must not be null");
        if (shape == null) throw new IllegalArgumentException("shape: must not be null");
        if (frozen.matches(name, shape)) return new Group(true, 0, 0);
        double scale = 1;
        for (LrScale s : lrScales) {
            if (s.rule().matches(name, shape)) {
                scale = s.scale();
                break;
            }
        }
        return new Group(false, scale, noDecay.matches(name, shape) ? 0 : weightDecay);
    }

    /** A new host optimizer of this configuration ({@link Sgd} or {@link Adam}), honouring its groups. */
    public Optimizer newHostOptimizer() {
        return kind == Kind.SGD ? new Sgd(this) : new Adam(this);
    }

    public static final class Builder {
        private final Kind kind;
        private final double lr;
        private double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, momentum, dampening, weightDecay;
        private double clipNorm = Double.POSITIVE_INFINITY;
        private boolean nesterov;
        private ParamRule frozen = ParamRule.none(), noDecay = ParamRule.none();
        private List<LrScale> lrScales = new java.util.ArrayList<>();

        private Builder(Kind kind, double lr) {
            this.kind = kind;
            this.lr = lr;
        }

        public Builder betas(double beta1, double beta2) {
            this.beta1 = beta1;
            this.beta2 = beta2;
            return this;
        }

        public Builder eps(double eps) {
            this.eps = eps;
            return this;
        }

        public Builder momentum(double momentum) {
            this.momentum = momentum;
            return this;
        }

        public Builder dampening(double dampening) {
            this.dampening = dampening;
            return this;
        }

        public Builder nesterov(boolean nesterov) {
            this.nesterov = nesterov;
            return this;
        }

        public Builder weightDecay(double weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        /** The largest global gradient norm ({@link Double#POSITIVE_INFINITY}, the default: no clipping). */
        public Builder clipNorm(double clipNorm) {
            this.clipNorm = clipNorm;
            return this;
        }

        /** The parameters never updated. */
        public Builder frozen(ParamRule frozen) {
            this.frozen = frozen;
            return this;
        }

        /** The parameters without weight decay ({@link ParamRule#torchNoDecay()}: PyTorch's usual grouping). */
        public Builder noDecay(ParamRule noDecay) {
            this.noDecay = noDecay;
            return this;
        }

        /** Multiplies the learning rate of the parameters {@code rule} matches (and no earlier scale matched). */
        public Builder lrScale(ParamRule rule, double scale) {
            lrScales.add(new LrScale(rule, scale));
            return this;
        }

        public OptimizerConfig build() {
            return new OptimizerConfig(kind, lr, beta1, beta2, eps, momentum, dampening, nesterov, weightDecay, clipNorm,
                    frozen, noDecay, lrScales);
        }
    }
}
