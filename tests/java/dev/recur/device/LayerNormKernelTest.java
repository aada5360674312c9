package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * {@code ln_rows_fwd}, {@code ln_rows_bwd} and {@code col_dot} alone, on every device backend, against float64:
 * per-block normalisation with per-direction gains, the backward formula checked against central finite
 * differences of a float64 statement of the forward, and the gain-gradient reduction.
 */
class LayerNormKernelTest {
    static final int ROWS_TB = 3, D = 2, G = 3, H = 7;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** Float64 layer norm of one row. */
    static double[] ln(double[] v, double[] gain, double[] shift) {
        int n = v.length;
        double mean = 0, var = 0;
        for (double x : v) mean += x;
        mean /= n;
        for (double x : v) var += (x - mean) * (x - mean);
        var /= n;
        double r = 1 / Math.sqrt(var + 1e-5);
        double[] out = new double[n];
        for (int j = 0; j < n; j++) out[j] = (v[j] - mean) * r * gain[j] + shift[j];
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void rowsForwardBackwardAndGainReduction(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        int rows = ROWS_TB * D * G, GH = G * H;
        SplittableRandom r = new SplittableRandom(9);
        float[] v = new float[rows * H], gain = new float[D * GH], shift = new float[D * GH], da = new float[rows * H];
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextDouble(-2, 2);
        for (int i = 0; i < gain.length; i++) {
            gain[i] = (float) r.nextDouble(0.5, 1.5);
            shift[i] = (float) r.nextDouble(-0.5, 0.5);
        }
        for (int i = 0; i < da.length; i++) da[i] = (float) r.nextDouble(-1, 1);
        try (DeviceBuffer dv = be.allocate(DeviceBuffer.Type.F32, v.length);
             DeviceBuffer dg = be.allocate(DeviceBuffer.Type.F32, gain.length);
             DeviceBuffer ds = be.allocate(DeviceBuffer.Type.F32, shift.length);
             DeviceBuffer xhat = be.allocate(DeviceBuffer.Type.F32, v.length);
             DeviceBuffer rstd = be.allocate(DeviceBuffer.Type.F32, rows);
             DeviceBuffer dda = be.allocate(DeviceBuffer.Type.F32, da.length);
             DeviceBuffer dout = be.allocate(DeviceBuffer.Type.F32, da.length);
             DeviceBuffer dgain = be.allocate(DeviceBuffer.Type.F32, D * GH)) {
            be.upload(v, 0, dv, 0, v.length);
            be.upload(gain, 0, dg, 0, gain.length);
            be.upload(shift, 0, ds, 0, shift.length);
            be.upload(da, 0, dda, 0, da.length);
            be.launch(Kernels.LN_ROWS_FWD, new long[] {rows}, rows, H, G, D, 1, dv, dg, ds, xhat, rstd);
            be.launch(Kernels.LN_ROWS_BWD, new long[] {rows}, rows, H, G, D, dda, dg, xhat, rstd, dout);
            be.launch(Kernels.COL_DOT, new long[] {D * GH}, ROWS_TB, D * GH, dda, xhat, dgain, 0f);
            float[] got = new float[v.length], gotDv = new float[v.length], gotXhat = new float[v.length],
                    gotGain = new float[D * GH];
            be.download(dv, 0, got, 0, got.length);
            be.download(dout, 0, gotDv, 0, gotDv.length);
            be.download(xhat, 0, gotXhat, 0, gotXhat.length);
            be.download(dgain, 0, gotGain, 0, gotGain.length);
            double[] wantGain = new double[D * GH];
            for (int row = 0; row < rows; row++) {
                int g = row % G, d = (row / G) % D, go = d * GH + g * H;
                double[] x = new double[H], ga = new double[H], sh = new double[H];
                for (int j = 0; j < H; j++) {
                    x[j] = v[row * H + j];
                    ga[j] = gain[go + j];
                    sh[j] = shift[go + j];
                }
                double[] want = ln(x, ga, sh);
                for (int j = 0; j < H; j++) {
                    int i = row * H + j;
                    if (Math.abs(want[j] - got[i]) > 2e-5) {
                        throw new AssertionError("ln_rows_fwd row " + row + " j " + j + ": expected " + want[j] + ", got " + got[i]);
                    }
                    wantGain[go + j] += da[i] * (want[j] - sh[j]) / ga[j];
                }
                // dv by central differences of sum(da * ln(v)).
                for (int j = 0; j < H; j++) {
                    double eps = 1e-6;
                    double[] plus = x.clone(), minus = x.clone();
                    plus[j] += eps;
                    minus[j] -= eps;
                    double[] yp = ln(plus, ga, sh), ym = ln(minus, ga, sh);
                    double num = 0;
                    for (int q = 0; q < H; q++) num += da[row * H + q] * (yp[q] - ym[q]) / (2 * eps);
                    if (Math.abs(num - gotDv[row * H + j]) > 2e-4 * Math.max(1, Math.abs(num))) {
                        throw new AssertionError("ln_rows_bwd row " + row + " j " + j + ": expected " + num + ", got "
                                + gotDv[row * H + j]);
                    }
                }
            }
            // col_dot over the [ROWS_TB, D*G*H] view: rows of (t,b), columns (d, g, j).
            for (int c = 0; c < D * GH; c++) {
                if (Math.abs(wantGain[c] - gotGain[c]) > 1e-4 * Math.max(1, Math.abs(wantGain[c]))) {
                    throw new AssertionError("col_dot (gain gradient) column " + c + ": expected " + wantGain[c] + ", got " + gotGain[c]);
                }
            }
        }
    }
}
