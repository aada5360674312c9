package dev.recur.nn.train;

/**
 * Adam(W) hyperparameters (as {@link Adam}: decoupled weight decay) and the global gradient norm to clip to, for the
 * trainers of the model heads ({@code SequenceClassifier.trainer}, {@code SequenceTagger.trainer}). The same fields
 * and checks as {@code LanguageModelTrainer.Config}, so that one record can serve every trainer.
 *
 * @param clipNorm the largest global gradient norm, or {@link Double#POSITIVE_INFINITY} for no clipping
 */
public record TrainerConfig(double lr, double beta1, double beta2, double eps, double weightDecay, double clipNorm) {
    public TrainerConfig {
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1: expected in [0, 1), got " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2: expected in [0, 1), got " + beta2);
        if (!(eps > 0) || !Double.isFinite(eps)) throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got " + weightDecay);
        }
        if (!(clipNorm > 0)) throw new IllegalArgumentException("clipNorm: expected > 0 (infinity: no clipping), got " + clipNorm);
    }

    /** Adam with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, no weight decay), clipped to {@code clipNorm}. */
    public static TrainerConfig adam(double lr, double clipNorm) {
        return new TrainerConfig(lr, 0.9, 0.999, 1e-8, 0, clipNorm);
    }

    /** AdamW with PyTorch's default β and ε, clipped to {@code clipNorm}. */
    public static TrainerConfig adamW(double lr, double weightDecay, double clipNorm) {
        return new TrainerConfig(lr, 0.9, 0.999, 1e-8, weightDecay, clipNorm);
    }

    /** The host optimizer of these hyperparameters (the float64 reference's step). */
    public Adam hostAdam() {
        return new Adam(lr, beta1, beta2, eps, weightDecay);
    }
}
