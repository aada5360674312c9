package dev.recur.cli;

import dev.recur.apps.Charts;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code recur forecast} at reduced epochs: both RMSEs, the plot, a custom CSV column, and bad input. */
class ForecastCommandTest {
    static final Pattern RMSE = Pattern.compile("test RMSE: LSTM ([0-9.]+), naive last value ([0-9.]+)");

    @TempDir
    Path dir;

    static double[] shippedSeries() throws IOException {
        try (InputStream in = ForecastCommandTest.class.getResourceAsStream("/data/airline-passengers.csv")) {
            List<String> lines = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
            assertEquals("month,passengers", lines.get(0));
            return lines.subList(1, lines.size()).stream().mapToDouble(l -> Double.parseDouble(l.split(",")[1])).toArray();
        }
    }

    @Test
    void reportsBothRmsesAndDrawsActualVersusPredicted() throws IOException {
        double[] y = shippedSeries();
        assertEquals(144, y.length, "airline passengers 1949-1960");
        assertEquals(112, y[0]);
        assertEquals(432, y[143]);
        Path out = dir.resolve("plots");
        CliRun r = CliRun.of("forecast", "--backend", "reference", "--epochs", "15", "--out", out.toString());
        assertEquals(0, r.code(), r.toString());
        Matcher m = RMSE.matcher(r.out());
        assertTrue(m.find(), r.out());
        // The naive forecast's RMSE over the last round(0.2*144) = 29 months, computed here from the file.
        double se = 0;
        for (int t = 144 - 29; t < 144; t++) se += (y[t] - y[t - 1]) * (y[t] - y[t - 1]);
        assertEquals(Math.sqrt(se / 29), Double.parseDouble(m.group(2)), 1e-3, "naive RMSE");
        double lstm = Double.parseDouble(m.group(1));
        // 15 epochs is far from trained; the model starts at the naive forecast (it predicts a change), so it
        // cannot be wildly off. A bug in the scaling or its inversion would put it in the hundreds.
        assertTrue(lstm > 0 && lstm < 3 * Double.parseDouble(m.group(2)), "LSTM RMSE " + lstm);
        assertTrue(r.out().contains("test the last 29"), r.out());
        assertTrue(r.out().contains("log value"), "auto transform takes the log of a positive series:\n" + r.out());
        BufferedImage img = DemoCommandTest.png(out.resolve("forecast.png"));
        assertEquals(Charts.WIDTH, img.getWidth());
        assertEquals(Charts.HEIGHT, img.getHeight());
    }

    @Test
    void forecastsANamedColumnOfAnotherCsv() throws IOException {
        StringBuilder sb = new StringBuilder("t,\"wave\",other\n");
        for (int i = 0; i < 60; i++) sb.append(i).append(',').append(Math.sin(i * 0.5) - 0.3).append(",x\n");
        Path csv = Files.writeString(dir.resolve("wave.csv"), sb.toString());
        CliRun r = CliRun.of("forecast", "--backend", "reference", "--csv", csv.toString(), "--column", "wave", "--lookback", "6",
                "--epochs", "5", "--out", dir.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("column 'wave': 60 values; training 48 (42 windows of 6), test the last 12"), r.out());
        assertTrue(!r.out().contains("log value"), "a series with negative values is modelled as is:\n" + r.out());
        assertTrue(RMSE.matcher(r.out()).find(), r.out());
    }

    @Test
    void badOptionsAndFilesExitTwoWithOneLine() throws IOException {
        Path bad = Files.writeString(dir.resolve("bad.csv"), "a,b\n1,2\n3,oops\n");
        Path ragged = Files.writeString(dir.resolve("ragged.csv"), "a,b\n1,2\n3\n");
        Path shortCsv = Files.writeString(dir.resolve("short.csv"), "a\n1\n2\n3\n");
        Path negative = Files.writeString(dir.resolve("neg.csv"), "a\n1\n-2\n3\n4\n5\n6\n7\n8\n9\n10\n");
        String[][] cases = {
                {"--csv", dir.resolve("missing.csv").toString()},
                {"--csv", bad.toString()},
                {"--csv", ragged.toString()},
                {"--csv", shortCsv.toString()},
                {"--column", "nope"},
                {"--lookback", "0"},
                {"--test-fraction", "1.5"},
                {"--transform", "sqrt"},
                {"--csv", negative.toString(), "--lookback", "2", "--transform", "log"},
        };
        String[] named = {"--csv", "line 3, column 'b'", "line 3", "--csv", "--column", "--lookback", "--test-fraction", "--transform", "--transform"};
        for (int i = 0; i < cases.length; i++) {
            String[] a = new String[cases[i].length + 3];
            a[0] = "forecast";
            System.arraycopy(cases[i], 0, a, 1, cases[i].length);
            a[a.length - 2] = "--out";
            a[a.length - 1] = dir.resolve("o" + i).toString();
            CliRun r = CliRun.of(a);
            assertEquals(2, r.code(), String.join(" ", a) + "\n" + r);
            assertEquals(1, r.errLines().length, String.join(" ", a) + "\n" + r);
            assertTrue(r.err().contains(named[i]), "expected '" + named[i] + "' in: " + r.err());
        }
    }
}
