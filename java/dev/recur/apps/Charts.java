package dev.recur.apps;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/** The PNG pictures of the command-line apps, drawn with XChart (headless). */
public final class Charts {
    /** Width and height of every picture, in pixels. */
    public static final int WIDTH = 900;
    public static final int HEIGHT = 560;

    static {
        // A server or CI machine has no display; XChart only needs Java2D's off-screen rendering.
        System.setProperty("java.awt.headless", "true");
    }

    private Charts() {}

    /**
     * A training curve: the raw per-step values (light) and their moving average (dark), log-scaled y when
     * every value is positive.
     */
    public static void lossCurve(Path file, String title, double[] values, String yLabel) throws IOException {
        if (values == null || values.length == 0) throw new IllegalArgumentException("values: expected at least one value, got none");
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("training step").yAxisTitle(yLabel).build();
        style(chart);
        double[] x = new double[values.length];
        boolean positive = true;
        for (int i = 0; i < values.length; i++) {
            x[i] = i;
            positive &= values[i] > 0;
        }
        chart.getStyler().setYAxisLogarithmic(positive);
        XYSeries raw = chart.addSeries("per step", x, values);
        raw.setMarker(SeriesMarkers.NONE);
        raw.setLineColor(new Color(0x9ecae1));
        raw.setLineWidth(1f);
        int w = Math.max(1, values.length / 40);
        XYSeries avg = chart.addSeries("moving average (" + w + " steps)", x, movingAverage(values, w));
        avg.setMarker(SeriesMarkers.NONE);
        avg.setLineColor(new Color(0x08519c));
        avg.setLineWidth(2.5f);
        save(chart, file);
    }

    /** Actual and predicted values of a series against its index, with a marker where the test period starts. */
    public static void forecast(Path file, String title, double[] actual, double[] fitted, double[] predicted, int testStart, String yLabel)
            throws IOException {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("time step").yAxisTitle(yLabel).build();
        style(chart);
        // Series that grow put their peaks top right, where the legend would sit by default.
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        line(chart, "actual", actual, 0, new Color(0x252525), 2f);
        if (fitted != null) line(chart, "fitted (train)", fitted, 0, new Color(0x74c476), 1.5f);
        line(chart, "predicted (test)", predicted, 0, new Color(0xe6550d), 2.5f);
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double v : actual) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        XYSeries split = chart.addSeries("train | test", new double[] {testStart - 0.5, testStart - 0.5}, new double[] {lo, hi});
        split.setMarker(SeriesMarkers.NONE);
        split.setLineColor(new Color(0x969696));
        split.setLineStyle(new java.awt.BasicStroke(1.5f, java.awt.BasicStroke.CAP_BUTT, java.awt.BasicStroke.JOIN_MITER, 10f,
                new float[] {6f, 4f}, 0f));
        save(chart, file);
    }

    /** Draws the non-NaN entries of {@code y} (index + offset on x) as one line. */
    private static void line(XYChart chart, String name, double[] y, int offset, Color color, float width) {
        List<Double> xs = new ArrayList<>(), ys = new ArrayList<>();
        for (int i = 0; i < y.length; i++) {
            if (Double.isNaN(y[i])) continue;
            xs.add((double) (i + offset));
            ys.add(y[i]);
        }
        if (xs.isEmpty()) return;
        XYSeries s = chart.addSeries(name, xs, ys);
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(color);
        s.setLineWidth(width);
    }

    /**
     * An attention heat map: one column per input character, one row per output character (first output at
     * the top), cell colour the attention weight in [0, 1].
     *
     * @param weights {@code [outputs][inputs]}
     */
    public static void attention(Path file, String title, List<String> inputs, List<String> outputs, double[][] weights) throws IOException {
        if (weights.length != outputs.size()) {
            throw new IllegalArgumentException("weights: expected " + outputs.size() + " rows (outputs), got " + weights.length);
        }
        HeatMapChart chart = new HeatMapChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("input character")
                .yAxisTitle("output character").build();
        var st = chart.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setChartTitleBoxVisible(false);
        st.setLegendVisible(true);
        st.setLegendPosition(Styler.LegendPosition.OutsideE);
        st.setRangeColors(new Color[] {new Color(0xf7fbff), new Color(0x6baed6), new Color(0x08306b)});
        st.setMin(0);
        st.setMax(1);
        st.setShowValue(false);
        st.setDrawBorder(false);
        st.setAxisTickLabelsFont(new Font(Font.MONOSPACED, Font.BOLD, 14));
        st.setPlotGridLinesVisible(false);
        // Category labels must be distinct; repeated characters get invisible padding so every position keeps its own column.
        List<String> xs = distinct(inputs), ys = new ArrayList<>(distinct(outputs));
        java.util.Collections.reverse(ys);
        List<Number[]> cells = new ArrayList<>();
        for (int o = 0; o < outputs.size(); o++) {
            if (weights[o].length != inputs.size()) {
                throw new IllegalArgumentException("weights: row " + o + " expected " + inputs.size() + " entries (inputs), got " + weights[o].length);
            }
            for (int i = 0; i < inputs.size(); i++) cells.add(new Number[] {i, outputs.size() - 1 - o, weights[o][i]});
        }
        chart.addSeries("attention weight", xs, ys, cells);
        save(chart, file);
    }

    private static List<String> distinct(List<String> labels) {
        List<String> out = new ArrayList<>();
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (String l : labels) {
            String s = l.equals(" ") ? "␣" : l;
            while (!seen.add(s)) s = s + "\u200B";
            out.add(s);
        }
        return out;
    }

    private static void style(XYChart chart) {
        var st = chart.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setChartTitleBoxVisible(false);
        st.setLegendPosition(Styler.LegendPosition.InsideNE);
        st.setPlotGridLinesColor(new Color(0xe0e0e0));
        st.setPlotBorderVisible(false);
    }

    static double[] movingAverage(double[] v, int w) {
        double[] out = new double[v.length];
        double s = 0;
        for (int i = 0; i < v.length; i++) {
            s += v[i];
            if (i >= w) s -= v[i - w];
            out[i] = s / Math.min(i + 1, w);
        }
        return out;
    }

    /** Writes the chart as PNG to {@code file} (replacing it atomically), creating the folder. */
    private static void save(org.knowm.xchart.internal.chartpart.Chart<?, ?> chart, Path file) throws IOException {
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Files.createDirectories(dir);
        byte[] png = BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
        // Not Files.createTempFile: it makes the file owner-only (0600) and the rename would carry that over.
        Path tmp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(System.nanoTime()) + ".tmp");
        try {
            Files.write(tmp, png, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
