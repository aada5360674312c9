package dev.recur.apps;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceTensor;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.nn.layers.MeanSquaredError;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.Pooling;
import dev.recur.nn.layers.SequenceClassifier;
import dev.recur.nn.layers.SequenceClassifierTrainer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

import java.util.Arrays;

/**
 * One-step-ahead forecasting of a univariate series with an LSTM ({@link SequenceClassifier} with one output,
 * {@link Pooling#LAST}, trained with {@link MeanSquaredError} by its {@link SequenceClassifierTrainer}: Adam, clipped
 * to a global norm of 1, on a device backend a step entirely on the device): the input is the last {@code lookback} values,
 * standardised with the mean and standard deviation of the training period only; the network's last state
 * goes through a linear layer that predicts the <em>change</em> from the last input value (so an
 * untrained model is the naive last-value forecast and training learns the pattern on top of it). The split
 * is by time: the last {@code testCount} values are predicted from windows that may reach back into the
 * training period, but no training target lies in the test period.
 */
public final class Forecaster {
    /**
     * @param lookback  values per input window
     * @param testCount values at the end of the series held out as the test period
     * @param hidden    LSTM hidden size
     * @param layers    stacked LSTM layers
     * @param epochs    full-batch training steps over every training window
     * @param lr        Adam learning rate
     * @param seed      seeds the weights
     * @param log       model the logarithm of the series (all values must be > 0): a growing seasonal amplitude
     *                  becomes a constant one, which a model trained on the early years can carry forward
     */
    public record Settings(int lookback, int testCount, int hidden, int layers, int epochs, double lr, long seed, boolean log) {
        public Settings {
            if (lookback <= 0) throw new IllegalArgumentException("lookback: expected > 0, got " + lookback);
            if (testCount <= 0) throw new IllegalArgumentException("testCount: expected > 0, got " + testCount);
            if (hidden <= 0) throw new IllegalArgumentException("hidden: expected > 0, got " + hidden);
            if (layers <= 0) throw new IllegalArgumentException("layers: expected > 0, got " + layers);
            if (epochs < 0) throw new IllegalArgumentException("epochs: expected >= 0, got " + epochs);
            if (!(lr > 0)) throw new IllegalArgumentException("lr: expected > 0, got " + lr);
        }
    }

    /** Called after each epoch with the training loss (mean squared error in standardised units). */
    @FunctionalInterface
    public interface Progress {
        void epoch(int epoch, double loss);
    }

    /**
     * @param fitted    one-step predictions for the training targets (NaN where no full window precedes)
     * @param predicted one-step predictions for the test period (NaN before it)
     * @param testRmse  RMSE of the model on the test period, in the series' units
     * @param naiveRmse RMSE of the last-value forecast on the test period
     * @param trainLoss final training loss (standardised MSE)
     */
    public record Result(double[] fitted, double[] predicted, double testRmse, double naiveRmse, double trainLoss, int trainWindows,
                         long parameters) {}

    private final Settings s;

    public Forecaster(Settings settings) {
        if (settings == null) throw new IllegalArgumentException("settings: must not be null");
        this.s = settings;
    }

    /** Trains on {@code series} (all values finite) and forecasts its test period. */
    public Result run(double[] series, Backend backend, Progress progress) {
        int n = series.length, test = s.testCount(), lb = s.lookback();
        int trainEnd = n - test;
        if (trainEnd - lb < 2) {
            throw new IllegalArgumentException("series: " + n + " values leave " + trainEnd + " for training, need more than lookback + 1 = "
                    + (lb + 1) + " (shorten the lookback or the test period)");
        }
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            if (!Double.isFinite(series[i])) throw new IllegalArgumentException("series: value " + i + " is " + series[i] + ", expected a finite number");
            if (s.log() && series[i] <= 0) {
                throw new IllegalArgumentException("series: value " + i + " is " + series[i] + "; the log transform needs every value > 0");
            }
            y[i] = s.log() ? Math.log(series[i]) : series[i];
        }
        double mean = 0;
        for (int i = 0; i < trainEnd; i++) mean += y[i];
        mean /= trainEnd;
        double var = 0;
        for (int i = 0; i < trainEnd; i++) var += (y[i] - mean) * (y[i] - mean);
        double sd = Math.sqrt(var / trainEnd);
        if (sd == 0) sd = 1;
        double[] z = new double[n];
        for (int i = 0; i < n; i++) z[i] = (y[i] - mean) / sd;

        // Training windows: targets lb .. trainEnd-1; test targets trainEnd .. n-1.
        int bt = trainEnd - lb;
        int[] trainTargets = new int[bt];
        for (int i = 0; i < bt; i++) trainTargets[i] = lb + i;
        int[] testTargets = new int[test];
        for (int i = 0; i < test; i++) testTargets[i] = trainEnd + i;

        Parameters params = new Parameters();
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 1, s.hidden()).layers(s.layers()).build();
        // Many-to-one: the top layer's last state through a linear layer to one number, the change from the last value.
        try (SequenceClassifier net = new SequenceClassifier(params, "forecaster", cfg, 1, Pooling.LAST, backend, s.seed())) {
            Tensor x = windows(z, trainTargets, lb);
            // prediction = last value + output, so the MSE of the prediction against the target is the MSE of the output
            // against the change, with the same gradient: the trainer regresses the output on the changes.
            double[] change = new double[bt];
            for (int b = 0; b < bt; b++) change[b] = z[trainTargets[b]] - z[trainTargets[b] - 1];
            double loss = Double.NaN;
            try (SequenceClassifierTrainer trainer = net.trainer(OptimizerConfig.adam(s.lr()).withClipNorm(1.0));
                 DeviceTensor onDevice = trainer.onDevice() ? DeviceTensor.of((DeviceBackend) backend, x) : null) {
                // Full-batch: the same windows every epoch, so on a device they go up once and a step sends the changes.
                for (int e = 0; e < s.epochs(); e++) {
                    loss = onDevice != null ? trainer.stepRegression(onDevice, null, change, s.seed() + e)
                            : trainer.stepRegression(x, null, change, s.seed() + e);
                    if (progress != null) progress.epoch(e, loss);
                }
            }
            double[] fitted = predict(net, z, trainTargets, lb, n, mean, sd);
            double[] predicted = predict(net, z, testTargets, lb, n, mean, sd);
            double se = 0, seNaive = 0;
            for (int t : testTargets) {
                se += (predicted[t] - series[t]) * (predicted[t] - series[t]);
                seNaive += (series[t - 1] - series[t]) * (series[t - 1] - series[t]);
            }
            return new Result(fitted, predicted, Math.sqrt(se / test), Math.sqrt(seNaive / test), loss, bt, params.count());
        }
    }

    /** {@code [B, 1]}: each window's last value plus the network's predicted change. */
    private static Tensor fromLast(double[] z, int[] targets, Tensor delta) {
        Tensor p = Tensor.zeros(targets.length, 1);
        for (int b = 0; b < targets.length; b++) p.data()[b] = z[targets[b] - 1] + delta.data()[b];
        return p;
    }

    private double[] predict(SequenceClassifier net, double[] z, int[] targets, int lb, int n, double mean, double sd) {
        double[] out = new double[n];
        Arrays.fill(out, Double.NaN);
        Tensor p = fromLast(z, targets, net.predict(windows(z, targets, lb), null));
        for (int b = 0; b < targets.length; b++) {
            double v = p.data()[b] * sd + mean;
            out[targets[b]] = s.log() ? Math.exp(v) : v;
        }
        return out;
    }

    /** {@code [lb, B, 1]}: window b holds the lb values before targets[b], oldest first. */
    static Tensor windows(double[] z, int[] targets, int lb) {
        Tensor x = Tensor.zeros(lb, targets.length, 1);
        for (int b = 0; b < targets.length; b++) {
            for (int t = 0; t < lb; t++) x.data()[t * targets.length + b] = z[targets[b] - lb + t];
        }
        return x;
    }
}
