package dev.recur.nn.layers;

import dev.recur.tensor.Tensor;

import java.util.Arrays;

/**
 * Mean squared error {@code mean((prediction - target)²)} over every element, with its gradient
 * {@code 2 (prediction - target) / n} (regression heads, e.g. a forecaster on a
 * {@link SequenceClassifier} with one output).
 */
public final class MeanSquaredError {
    private MeanSquaredError() {}

    /** @param loss the mean; {@code dprediction} its gradient, same shape as the prediction */
    public record Result(double loss, Tensor dprediction) {}

    public static Result compute(Tensor prediction, Tensor target) {
        if (prediction == null || target == null) throw new IllegalArgumentException("prediction/target: must not be null");
        if (!prediction.sameShape(target.shape())) {
            throw new IllegalArgumentException("target: expected shape " + Arrays.toString(prediction.shape()) + " (as prediction), got "
                    + Arrays.toString(target.shape()));
        }
        int n = prediction.size();
        Tensor d = Tensor.zeros(prediction.shape());
        double s = 0;
        for (int i = 0; i < n; i++) {
            double e = prediction.data()[i] - target.data()[i];
            s += e * e;
            d.data()[i] = 2 * e / n;
        }
        return new Result(n == 0 ? 0 : s / n, d);
    }
}
