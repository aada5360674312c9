package dev.recur.nn.layers;

import dev.recur.tensor.Tensor;

import java.util.Arrays;

/** Elementwise activations and (log-)softmax over the last axis, with their backward passes. */
public final class Activations {
    private Activations() {}

    public static Tensor tanh(Tensor x) {
        Tensor y = Tensor.zeros(x.shape());
        double[] a = x.data(), b = y.data();
        for (int i = 0; i < a.length; i++) b[i] = Math.tanh(a[i]);
        return y;
    }

    /** Gradient through {@code y = tanh(x)} given the output {@code y}: {@code dy * (1 - y²)}. */
    public static Tensor tanhBackward(Tensor y, Tensor dy) {
        Tensor dx = Tensor.zeros(y.shape());
        double[] a = y.data(), g = dy.data(), d = dx.data();
        for (int i = 0; i < a.length; i++) d[i] = g[i] * (1 - a[i] * a[i]);
        return dx;
    }

    /** Log-softmax over the last axis, computed stably (subtracting each row's max). */
    public static Tensor logSoftmax(Tensor logits) {
        int v = logits.dim(logits.rank() - 1);
        Tensor out = Tensor.zeros(logits.shape());
        double[] x = logits.data(), y = out.data();
        for (int r = 0; r < x.length / v; r++) {
            int o = r * v;
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) m = Math.max(m, x[o + j]);
            double s = 0;
            for (int j = 0; j < v; j++) s += Math.exp(x[o + j] - m);
            double lse = m + Math.log(s);
            for (int j = 0; j < v; j++) y[o + j] = x[o + j] - lse;
        }
        return out;
    }

    /** Softmax over the last axis. */
    public static Tensor softmax(Tensor logits) {
        Tensor t = logSoftmax(logits);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = Math.exp(d[i]);
        return t;
    }

    /** Index of the largest value in each row of a {@code [N, V]} tensor (first on ties). */
    public static int[] argmax(Tensor rows) {
        int v = rows.dim(rows.rank() - 1);
        int n = rows.size() / v;
        int[] out = new int[n];
        double[] d = rows.data();
        for (int r = 0; r < n; r++) {
            int best = 0;
            for (int j = 1; j < v; j++) if (d[r * v + j] > d[r * v + best]) best = j;
            out[r] = best;
        }
        return out;
    }

    /** {@code [a; b]} along the last axis; leading dimensions must agree. */
    public static Tensor concatLast(Tensor a, Tensor b) {
        int[] sa = a.shape(), sb = b.shape();
        if (sa.length != sb.length || !Arrays.equals(Arrays.copyOf(sa, sa.length - 1), Arrays.copyOf(sb, sb.length - 1))) {
            throw new IllegalArgumentException("concat: leading dimensions differ: " + Arrays.toString(sa) + " vs " + Arrays.toString(sb));
        }
        int wa = sa[sa.length - 1], wb = sb[sb.length - 1];
        int rows = wa == 0 ? b.size() / wb : a.size() / wa;
        int[] s = sa.clone();
        s[s.length - 1] = wa + wb;
        Tensor out = Tensor.zeros(s);
        for (int r = 0; r < rows; r++) {
            System.arraycopy(a.data(), r * wa, out.data(), r * (wa + wb), wa);
            System.arraycopy(b.data(), r * wb, out.data(), r * (wa + wb) + wa, wb);
        }
        return out;
    }

    /** The columns {@code [from, from + width)} of the last axis. */
    public static Tensor sliceLast(Tensor x, int from, int width) {
        int w = x.dim(x.rank() - 1);
        if (from < 0 || width < 0 || from + width > w) {
            throw new IllegalArgumentException("slice: [" + from + ", " + (from + width) + ") outside width " + w);
        }
        int rows = x.size() / w;
        int[] s = x.shape();
        s[s.length - 1] = width;
        Tensor out = Tensor.zeros(s);
        for (int r = 0; r < rows; r++) System.arraycopy(x.data(), r * w + from, out.data(), r * width, width);
        return out;
    }

    /** {@code acc += x} elementwise (same size). */
    public static void addInto(Tensor acc, Tensor x) {
        double[] a = acc.data(), b = x.data();
        if (a.length != b.length) throw new IllegalArgumentException("add: sizes differ: " + acc + " vs " + x);
        for (int i = 0; i < a.length; i++) a[i] += b[i];
    }
}
