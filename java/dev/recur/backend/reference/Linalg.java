package dev.recur.backend.reference;

/**
 * The few dense operations the reference needs, written as plain loops over row-major float64 arrays so
 * that each one can be read against its equation.
 */
final class Linalg {
    private Linalg() {}

    /** {@code y[r] = sum_c W[row0 + r, c] * x[c]} for {@code rows} rows of a {@code [*, cols]} matrix. */
    static double[] matVec(double[] w, int row0, int rows, int cols, double[] x) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            int base = (row0 + r) * cols;
            for (int c = 0; c < cols; c++) s += w[base + c] * x[c];
            y[r] = s;
        }
        return y;
    }

    /**
     * Backward of {@link #matVec}: {@code dW[row0 + r, c] += dy[r] * x[c]} and {@code dx[c] += sum_r W[row0 + r, c] * dy[r]}.
     */
    static void matVecBackward(double[] w, double[] dw, int row0, int rows, int cols, double[] x, double[] dy, double[] dx) {
        for (int r = 0; r < rows; r++) {
            int base = (row0 + r) * cols;
            double g = dy[r];
            for (int c = 0; c < cols; c++) {
                dw[base + c] += g * x[c];
                dx[c] += w[base + c] * g;
            }
        }
    }

    static double sigmoid(double v) {
        return 1.0 / (1.0 + Math.exp(-v));
    }

    static void addInto(double[] acc, double[] v) {
        for (int i = 0; i < acc.length; i++) acc[i] += v[i];
    }

    static double[] times(double[] a, double[] b) {
        double[] r = new double[a.length];
        for (int i = 0; i < r.length; i++) r[i] = a[i] * b[i];
        return r;
    }

    /**
     * Layer norm of one gate block {@code v[off .. off+n)} in place:
     * {@code (v - mean) / sqrt(var + eps) * gain + shift} with the biased variance. Saves the normalised
     * values into {@code xhat[off..]} and returns 1/sqrt(var + eps) for the backward pass.
     */
    static double layerNormBlock(double[] v, int off, int n, double[] gain, double[] shift, double[] xhat, double eps) {
        double mean = 0;
        for (int j = 0; j < n; j++) mean += v[off + j];
        mean /= n;
        double var = 0;
        for (int j = 0; j < n; j++) {
            double d = v[off + j] - mean;
            var += d * d;
        }
        var /= n;
        double rstd = 1.0 / Math.sqrt(var + eps);
        for (int j = 0; j < n; j++) {
            double xh = (v[off + j] - mean) * rstd;
            xhat[off + j] = xh;
            v[off + j] = xh * gain[off + j] + shift[off + j];
        }
        return rstd;
    }

    /**
     * Backward of {@link #layerNormBlock}: turns {@code d[off..off+n)} (gradient of the block's output)
     * into the gradient of its input, in place, accumulating the gain and shift gradients.
     */
    static void layerNormBlockBackward(double[] d, int off, int n, double[] gain, double[] dGain, double[] dShift,
                                       double[] xhat, double rstd) {
        double meanDxh = 0;
        double meanDxhXh = 0;
        double[] dxh = new double[n];
        for (int j = 0; j < n; j++) {
            double g = d[off + j];
            dGain[off + j] += g * xhat[off + j];
            dShift[off + j] += g;
            dxh[j] = g * gain[off + j];
            meanDxh += dxh[j];
            meanDxhXh += dxh[j] * xhat[off + j];
        }
        meanDxh /= n;
        meanDxhXh /= n;
        for (int j = 0; j < n; j++) {
            d[off + j] = rstd * (dxh[j] - meanDxh - xhat[off + j] * meanDxhXh);
        }
    }
}
