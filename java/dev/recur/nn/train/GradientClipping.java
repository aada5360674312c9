package dev.recur.nn.train;

import dev.recur.nn.layers.Parameters;

/** Gradient clipping over every gradient of a {@link Parameters}, in place. */
public final class GradientClipping {
    private GradientClipping() {}

    /** The L2 norm of all gradients taken together. */
    public static double globalNorm(Parameters params) {
        double s = 0;
        for (var g : params.grads().values()) for (double v : g.data()) s += v * v;
        return Math.sqrt(s);
    }

    /**
     * When the global L2 norm exceeds {@code maxNorm}, scales every gradient by {@code maxNorm / norm} so the
     * norm becomes {@code maxNorm} (PyTorch's {@code clip_grad_norm_} without its 1e-6 in the denominator).
     *
     * @return the norm before clipping
     */
    public static double clipByGlobalNorm(Parameters params, double maxNorm) {
        if (!(maxNorm > 0) || !Double.isFinite(maxNorm)) {
            throw new IllegalArgumentException("maxNorm: expected a finite value > 0, got " + maxNorm);
        }
        double norm = globalNorm(params);
        if (norm > maxNorm) {
            double f = maxNorm / norm;
            for (var g : params.grads().values()) {
                double[] d = g.data();
                for (int i = 0; i < d.length; i++) d[i] *= f;
            }
        }
        return norm;
    }

    /**
     * Clipping as {@code config} says, as PyTorch's {@code clip_grad_norm_} over the optimizer's parameters: the norm
     * of the gradients of every parameter {@code config} does not freeze (in {@code params}' order), and when
     * {@code config} clips, those gradients scaled by {@code min(1, clipNorm / (norm + 1e-6))}. The device
     * ({@link DeviceOptimizer}) computes the same coefficient; frozen gradients are left as they are.
     *
     * @return the norm before clipping
     */
    public static double clip(Parameters params, OptimizerConfig config) {
        if (params == null) throw new IllegalArgumentException("params: must not be null");
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        java.util.List<double[]> counted = new java.util.ArrayList<>();
        for (String name : params.names()) {
            if (!config.group(name, params.value(name).shape()).frozen()) counted.add(params.grad(name).data());
        }
        double s = 0;
        for (double[] g : counted) for (double v : g) s += v * v;
        double norm = Math.sqrt(s);
        if (config.clips()) {
            double f = Math.min(1.0, config.clipNorm() / (norm + 1e-6));
            if (f < 1) for (double[] g : counted) for (int i = 0; i < g.length; i++) g[i] *= f;
        }
        return norm;
    }

    /**
     * Clamps every gradient element into {@code [-limit, limit]}.
     *
     * @return the number of elements changed
     */
    public static long clipByValue(Parameters params, double limit) {
        if (!(limit > 0) || !Double.isFinite(limit)) {
            throw new IllegalArgumentException("limit: expected a finite value > 0, got " + limit);
        }
        long changed = 0;
        for (var g : params.grads().values()) {
            double[] d = g.data();
            for (int i = 0; i < d.length; i++) {
                if (d[i] > limit) {
                    d[i] = limit;
                    changed++;
                } else if (d[i] < -limit) {
                    d[i] = -limit;
                    changed++;
                }
            }
        }
        return changed;
    }
}
