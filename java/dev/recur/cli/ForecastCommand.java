package dev.recur.cli;

import dev.recur.apps.Charts;
import dev.recur.apps.Forecaster;
import dev.recur.backend.Backend;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code recur forecast}: an LSTM one-step-ahead forecaster on one numeric column of a CSV file. */
@Command(name = "forecast", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "An LSTM forecaster on one numeric column of a CSV file: test RMSE against the naive forecast, and a plot.",
                "",
                "Forecast one numeric column of a CSV file one step ahead with an LSTM over a lookback window. Inputs are"
                        + " standardised with the training period's mean and deviation; the network predicts the change from the"
                        + " last value. The last --test-fraction of the rows is the test period (a split by time). Prints the"
                        + " test RMSE against the naive last-value forecast and writes forecast.png (actual vs predicted).",
                "Default data: monthly airline passengers 1949-1960 (Box & Jenkins, data/airline-passengers.csv).",
                ""})
final class ForecastCommand implements Callable<Integer> {
    static final String DEFAULT_CSV = "data/airline-passengers.csv";

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--csv", paramLabel = "FILE", description = "CSV file with a header row (default: " + DEFAULT_CSV + ", shipped).")
    Path csv;

    @Option(names = "--column", paramLabel = "NAME", description = "The column to forecast (default: the last column).")
    String column;

    @Option(names = "--lookback", defaultValue = "12", description = "Past values per input window (default: ${DEFAULT-VALUE}).")
    int lookback;

    @Option(names = "--test-fraction", defaultValue = "0.2", paramLabel = "F",
            description = "Share of the rows, at the end, forming the test period (default: ${DEFAULT-VALUE}).")
    double testFraction;

    @Option(names = "--transform", defaultValue = "auto", paramLabel = "auto|log|none",
            description = "Model the log of the series (log), the values as they are (none), or log when every value is > 0 (auto, the default).")
    String transform;

    @Option(names = "--hidden", defaultValue = "32", description = "LSTM hidden size (default: ${DEFAULT-VALUE}).")
    int hidden;

    @Option(names = "--layers", defaultValue = "1", description = "Stacked LSTM layers (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--epochs", defaultValue = "200", description = "Full-batch training steps (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--lr", defaultValue = "0.01", description = "Adam learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--seed", defaultValue = "1", description = "Seeds the weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", defaultValue = "forecast-out", paramLabel = "DIR", description = "Folder for forecast.png (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--backend", paramLabel = "reference|cpu|opencl|cuda",
            description = "Where the LSTM runs (default: the best available, see 'recur devices').")
    String backend;

    /** A named numeric column of a CSV file. */
    record Column(String name, double[] values) {}

    @Override
    public Integer call() throws IOException {
        CommandLine cl = spec.commandLine();
        AppSupport.positive(cl, "--lookback", lookback);
        AppSupport.positive(cl, "--hidden", hidden);
        AppSupport.positive(cl, "--layers", layers);
        AppSupport.positive(cl, "--epochs", epochs);
        if (!(testFraction > 0 && testFraction < 1)) {
            throw new CommandLine.ParameterException(cl, "--test-fraction: expected a value in (0, 1), got " + testFraction);
        }
        if (!(lr > 0) || !Double.isFinite(lr)) throw new CommandLine.ParameterException(cl, "--lr: expected a finite value > 0, got " + lr);
        if (!List.of("auto", "log", "none").contains(transform)) {
            throw new CommandLine.ParameterException(cl, "--transform: expected auto, log or none, got '" + transform + "'");
        }
        Column col = readColumn(cl);
        int n = col.values().length;
        boolean positive = Arrays.stream(col.values()).allMatch(v -> v > 0);
        if (transform.equals("log") && !positive) {
            throw AppSupport.bad(cl, "--transform: log needs every value of '" + col.name() + "' > 0; use --transform none");
        }
        boolean log = transform.equals("log") || transform.equals("auto") && positive;
        int test = (int) Math.round(n * testFraction);
        if (test < 1 || n - test - lookback < 2) {
            throw AppSupport.bad(cl, "--csv: " + source() + " has " + n + " rows; with --lookback " + lookback + " and --test-fraction "
                    + testFraction + " (" + test + " test rows) that leaves " + Math.max(0, n - test - lookback)
                    + " training windows, need at least 2");
        }
        AppSupport.outputFolder(cl, "--out", out);
        PrintWriter w = cl.getOut();
        Forecaster f = new Forecaster(new Forecaster.Settings(lookback, test, hidden, layers, epochs, lr, seed, log));
        Forecaster.Result r;
        long t0 = System.nanoTime();
        try (Backend be = AppSupport.openBackend(cl, backend)) {
            w.printf("series    %s, column '%s': %d values; training %d (%d windows of %d), test the last %d%n", source(), col.name(), n,
                    n - test, n - test - lookback, lookback, test);
            w.printf("model     LSTM %d layer(s) of %d -> linear, predicting the change from the last %svalue; backend %s%n", layers, hidden,
                    log ? "log " : "", be.name());
            w.flush();
            try (ProgressBar pb = AppSupport.progress(cl, "train", epochs)) {
                r = f.run(col.values(), be, (e, loss) -> {
                    pb.step();
                    pb.setExtraMessage(String.format(Locale.ROOT, " mse %.4f", loss));
                });
            }
        }
        w.printf("trained in %s, final training MSE %.4f (standardised)%n", AppSupport.seconds((System.nanoTime() - t0) / 1e9), r.trainLoss());
        w.printf("test RMSE: LSTM %.3f, naive last value %.3f (%s)%n", r.testRmse(), r.naiveRmse(),
                r.testRmse() < r.naiveRmse() ? String.format(Locale.ROOT, "%.0f%% lower", 100 * (1 - r.testRmse() / r.naiveRmse()))
                        : "the LSTM does not beat the naive forecast");
        Path png = out.resolve("forecast.png");
        Charts.forecast(png, "One-step forecast of '" + col.name() + "' (" + source() + ")", col.values(), r.fitted(), r.predicted(), n - test,
                col.name());
        w.printf("wrote %s%n", png);
        w.flush();
        return 0;
    }

    private String source() {
        return csv != null ? csv.toString() : DEFAULT_CSV;
    }

    private Column readColumn(CommandLine cl) throws IOException {
        List<String> lines;
        if (csv != null) {
            AppSupport.readableFile(cl, "--csv", csv);
            try {
                lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
            } catch (java.nio.charset.MalformedInputException e) {
                throw AppSupport.bad(cl, "--csv: " + csv + " is not UTF-8 text");
            }
        } else {
            try (InputStream in = ForecastCommand.class.getResourceAsStream("/" + DEFAULT_CSV)) {
                if (in == null) throw new IOException("the default series " + DEFAULT_CSV + " is missing from the classpath");
                lines = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
            }
        }
        return parse(cl, lines);
    }

    /** The --column (or last) column of CSV lines: a header, then one number per row; blank lines are skipped. */
    Column parse(CommandLine cl, List<String> lines) {
        int first = 0;
        while (first < lines.size() && lines.get(first).isBlank()) first++;
        if (first == lines.size()) throw AppSupport.bad(cl, "--csv: " + source() + " is empty");
        List<String> header = cells(lines.get(first));
        int idx;
        if (column == null) {
            idx = header.size() - 1;
        } else {
            idx = header.indexOf(column);
            if (idx < 0) throw AppSupport.bad(cl, "--column: no column '" + column + "' in " + source() + " (columns: " + String.join(", ", header) + ")");
        }
        List<Double> values = new ArrayList<>();
        for (int i = first + 1; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) continue;
            List<String> c = cells(lines.get(i));
            if (c.size() != header.size()) {
                throw AppSupport.bad(cl, "--csv: " + source() + " line " + (i + 1) + " has " + c.size() + " fields, expected " + header.size());
            }
            try {
                double v = Double.parseDouble(c.get(idx));
                if (!Double.isFinite(v)) throw new NumberFormatException();
                values.add(v);
            } catch (NumberFormatException e) {
                throw AppSupport.bad(cl, "--csv: " + source() + " line " + (i + 1) + ", column '" + header.get(idx) + "': expected a number, got '"
                        + c.get(idx) + "'");
            }
        }
        return new Column(header.get(idx), values.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** Comma-separated fields, trimmed, with surrounding double quotes removed (no embedded commas). */
    private static List<String> cells(String line) {
        List<String> out = new ArrayList<>();
        for (String s : line.split(",", -1)) {
            String t = s.strip();
            if (t.length() >= 2 && t.startsWith("\"") && t.endsWith("\"")) t = t.substring(1, t.length() - 1);
            out.add(t);
        }
        return out;
    }

}
