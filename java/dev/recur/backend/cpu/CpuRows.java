package dev.recur.backend.cpu;

import dev.recur.config.DropoutMask;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Small vector loops over rows held in heap scratch arrays, the building blocks of the cell kernels. They are
 * kept small on purpose: C2 compiles the Vector API to machine vectors only when it inlines every call that
 * touches a vector, and one loop computing a whole LSTM step exceeds its inlining budget, after which every
 * vector operation falls back to a slow boxed path. Rows move between the off-heap buffers and the scratch
 * arrays with bulk copies. Each loop finishes its tail with the same formula on scalars.
 */
final class CpuRows {
    private CpuRows() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final int[] IOTA = new int[L];

    static {
        for (int i = 0; i < L; i++) IOTA[i] = i;
    }

    /** dst[d..d+n) = src[s..s+n) from a buffer. */
    static void load(MemorySegment src, long s, float[] dst, int d, int n) {
        MemorySegment.copy(src, F, s * Float.BYTES, dst, d, n);
    }

    /** dst[d..d+n) in a buffer = src[s..s+n). */
    static void store(float[] src, int s, MemorySegment dst, long d, int n) {
        MemorySegment.copy(src, s, dst, F, d * Float.BYTES, n);
    }

    private static final java.nio.ByteOrder NATIVE = java.nio.ByteOrder.nativeOrder();

    /**
     * dst[d..d+n) = src[s..s+n) from a buffer with vector loads: for the short rows of the sequence kernels, where
     * a bulk copy's fixed cost exceeds the copying.
     */
    static void get(MemorySegment src, long s, float[] dst, int d, int n) {
        int i = 0;
        for (; i <= n - L; i += L) FloatVector.fromMemorySegment(S, src, (s + i) * Float.BYTES, NATIVE).intoArray(dst, d + i);
        for (; i < n; i++) dst[d + i] = src.getAtIndex(F, s + i);
    }

    /** dst[d..d+n) in a buffer = src[s..s+n), with vector stores (short rows; see {@link #get}). */
    static void put(float[] src, int s, MemorySegment dst, long d, int n) {
        int i = 0;
        for (; i <= n - L; i += L) FloatVector.fromArray(S, src, s + i).intoMemorySegment(dst, (d + i) * Float.BYTES, NATIVE);
        for (; i < n; i++) dst.setAtIndex(F, d + i, src[s + i]);
    }

    /** x[xo..xo+n) += src[s..s+n) read from a buffer (short rows; see {@link #get}). */
    static void addFrom(float[] x, int xo, MemorySegment src, long s, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(S, x, xo + i).add(FloatVector.fromMemorySegment(S, src, (s + i) * Float.BYTES, NATIVE))
                    .intoArray(x, xo + i);
        }
        for (; i < n; i++) x[xo + i] += src.getAtIndex(F, s + i);
    }

    /** {@link #get} of {@code blocks} rows of n: block q from src[s + q*sStride..] to dst[d + q*dStride..]. */
    static void getBlocks(MemorySegment src, long s, long sStride, float[] dst, int d, int dStride, int blocks, int n) {
        for (int q = 0; q < blocks; q++) get(src, s + q * sStride, dst, d + q * dStride, n);
    }

    /** {@link #put} of {@code blocks} rows of n: block q from src[s + q*sStride..] to dst[d + q*dStride..]. */
    static void putBlocks(float[] src, int s, int sStride, MemorySegment dst, long d, long dStride, int blocks, int n) {
        for (int q = 0; q < blocks; q++) put(src, s + q * sStride, dst, d + q * dStride, n);
    }

    /** {@link #addFrom} of {@code blocks} rows of n: x block q at xo + q*xStride, src block q at s + q*sStride. */
    static void addFromBlocks(float[] x, int xo, int xStride, MemorySegment src, long s, long sStride, int blocks, int n) {
        for (int q = 0; q < blocks; q++) addFrom(x, xo + q * xStride, src, s + q * sStride, n);
    }

    /** Adds the vector v[vo..vo+n) to each of {@code rows} consecutive rows of n at x[xo..]. */
    static void addRows(float[] x, int xo, int rows, int n, float[] v, int vo) {
        for (int r = 0; r < rows; r++) add(x, xo + r * n, v, vo, n);
    }

    /** x[xo..] += y[yo..]. */
    static void add(float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(S, x, xo + i).add(FloatVector.fromArray(S, y, yo + i)).intoArray(x, xo + i);
        }
        for (; i < n; i++) x[xo + i] += y[yo + i];
    }

    /** x[xo..] += w[wo..] * y[yo..] (peephole terms). */
    static void fma(float[] x, int xo, float[] w, int wo, float[] y, int yo, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(S, w, wo + i).fma(FloatVector.fromArray(S, y, yo + i), FloatVector.fromArray(S, x, xo + i))
                    .intoArray(x, xo + i);
        }
        for (; i < n; i++) x[xo + i] += w[wo + i] * y[yo + i];
    }

    /** x[xo..] *= y[yo..]. */
    static void mul(float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(S, x, xo + i).mul(FloatVector.fromArray(S, y, yo + i)).intoArray(x, xo + i);
        }
        for (; i < n; i++) x[xo + i] *= y[yo + i];
    }

    static void sigmoid(float[] x, int off, int n) {
        int i = 0;
        for (; i <= n - L; i += L) CpuMath.sigmoid(FloatVector.fromArray(S, x, off + i)).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] = CpuMath.sigmoid(x[off + i]);
    }

    static void tanh(float[] x, int off, int n) {
        int i = 0;
        for (; i <= n - L; i += L) CpuMath.tanh(FloatVector.fromArray(S, x, off + i)).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] = CpuMath.tanh(x[off + i]);
    }

    /** dst[do..] = tanh(src[so..]). */
    static void tanh(float[] src, int so, float[] dst, int dOff, int n) {
        int i = 0;
        for (; i <= n - L; i += L) CpuMath.tanh(FloatVector.fromArray(S, src, so + i)).intoArray(dst, dOff + i);
        for (; i < n; i++) dst[dOff + i] = CpuMath.tanh(src[so + i]);
    }

    static void relu(float[] x, int off, int n) {
        int i = 0;
        for (; i <= n - L; i += L) FloatVector.fromArray(S, x, off + i).max(0f).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] = x[off + i] > 0f ? x[off + i] : 0f;
    }

    /**
     * x[off + j] *= mask(prefix, index0 + j) for j in [0, n): the dropout mask of {@link DropoutMask}, with the
     * seed and stream already hashed into {@code prefix}.
     */
    static void mask(float[] x, int off, int n, int prefix, int index0, int thresh, float scale) {
        if (thresh == 0) return;
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(S, x, off + i).mul(maskVec(prefix, index0 + i, thresh, scale)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] *= mask(prefix, index0 + i, thresh, scale);
    }

    /** The part of a dropout hash that depends only on seed and stream (see {@link DropoutMask#bits}). */
    static int maskPrefix(int seedLo, int seedHi, int stream) {
        int h = DropoutMask.mix(seedLo ^ DropoutMask.mix(seedHi));
        return DropoutMask.mix(h ^ stream);
    }

    static float mask(int prefix, int index, int thresh, float scale) {
        if (thresh == 0) return 1f;
        return (DropoutMask.mix(prefix ^ index) >>> 8) >= thresh ? scale : 0f;
    }

    /** Masks of indexes {@code index0 .. index0+L-1}; only called with {@code thresh != 0}. */
    static FloatVector maskVec(int prefix, int index0, int thresh, float scale) {
        IntVector x = IntVector.fromArray(SI, IOTA, 0).add(index0).lanewise(VectorOperators.XOR, prefix);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 16)).mul(0x7feb352d);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 15)).mul(0x846ca68b);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 16));
        var keep = x.lanewise(VectorOperators.LSHR, 8).compare(VectorOperators.GE, thresh).cast(S);
        return FloatVector.zero(S).blend(scale, keep);
    }

    // ------------------------------------------------------------------------------------------------------
    // Cell arithmetic without transcendentals (the activations come from the loops above)

    /** LSTM cell update: c[..] = f*cp + i*g with the gates at offsets fi, ff, fg of {@code gates} (f = 1-i if coupled). */
    static void lstmCell(float[] gates, int gi, int gf, int gg, boolean coupled, float[] cp, float[] c, int n) {
        int j = 0;
        for (; j <= n - L; j += L) {
            FloatVector i = FloatVector.fromArray(S, gates, gi + j);
            FloatVector f = coupled ? i.neg().add(1f) : FloatVector.fromArray(S, gates, gf + j);
            FloatVector g = FloatVector.fromArray(S, gates, gg + j);
            f.fma(FloatVector.fromArray(S, cp, j), i.mul(g)).intoArray(c, j);
        }
        for (; j < n; j++) {
            float i = gates[gi + j];
            float f = coupled ? 1f - i : gates[gf + j];
            c[j] = f * cp[j] + i * gates[gg + j];
        }
    }

    /**
     * LSTM backward without peepholes' dc terms: from dh, dc_in, c_{t-1}, tanh(c_t) and the gates, writes the
     * pre-activation gradients into {@code dg} (same block layout as the gates) and dc*f + peephole terms into
     * {@code dcPrev}. {@code peep} holds w_ci, w_cf, w_co of this direction (or null).
     */
    static void lstmBackward(float[] dh, float[] dcin, float[] cp, float[] tc, float[] gates, int H, boolean coupled,
                             float[] peep, float[] dg, float[] dcPrev, int n) {
        int bf = H, bg = coupled ? H : 2 * H, bo = coupled ? 2 * H : 3 * H;
        int j = 0;
        for (; j <= n - L; j += L) {
            FloatVector vdh = FloatVector.fromArray(S, dh, j);
            FloatVector vtc = FloatVector.fromArray(S, tc, j);
            FloatVector ig = FloatVector.fromArray(S, gates, j);
            FloatVector gg = FloatVector.fromArray(S, gates, bg + j);
            FloatVector og = FloatVector.fromArray(S, gates, bo + j);
            FloatVector vcp = FloatVector.fromArray(S, cp, j);
            FloatVector doPre = vdh.mul(vtc).mul(og).mul(og.neg().add(1f));
            FloatVector dcn = FloatVector.fromArray(S, dcin, j).add(vdh.mul(og).mul(vtc.mul(vtc).neg().add(1f)));
            if (peep != null) dcn = FloatVector.fromArray(S, peep, 2 * H + j).fma(doPre, dcn);
            FloatVector di = coupled ? dcn.mul(gg.sub(vcp)) : dcn.mul(gg);
            FloatVector diPre = di.mul(ig).mul(ig.neg().add(1f));
            FloatVector dgPre = dcn.mul(ig).mul(gg.mul(gg).neg().add(1f));
            FloatVector fg = coupled ? ig.neg().add(1f) : FloatVector.fromArray(S, gates, bf + j);
            FloatVector dcp = dcn.mul(fg);
            if (!coupled) {
                FloatVector dfPre = dcn.mul(vcp).mul(fg).mul(fg.neg().add(1f));
                if (peep != null) dcp = FloatVector.fromArray(S, peep, H + j).fma(dfPre, dcp);
                dfPre.intoArray(dg, bf + j);
            }
            if (peep != null) dcp = FloatVector.fromArray(S, peep, j).fma(diPre, dcp);
            dcp.intoArray(dcPrev, j);
            diPre.intoArray(dg, j);
            dgPre.intoArray(dg, bg + j);
            doPre.intoArray(dg, bo + j);
        }
        for (; j < n; j++) {
            float vdh = dh[j], vtc = tc[j], ig = gates[j], gg = gates[bg + j], og = gates[bo + j], vcp = cp[j];
            float fg = coupled ? 1f - ig : gates[bf + j];
            float wci = peep != null ? peep[j] : 0f, wcf = peep != null ? peep[H + j] : 0f;
            float wco = peep != null ? peep[2 * H + j] : 0f;
            float doPre = vdh * vtc * og * (1f - og);
            float dcn = dcin[j] + vdh * og * (1f - vtc * vtc) + wco * doPre;
            float di = coupled ? dcn * (gg - vcp) : dcn * gg;
            float diPre = di * ig * (1f - ig);
            float dfPre = coupled ? 0f : dcn * vcp * fg * (1f - fg);
            float dgPre = dcn * ig * (1f - gg * gg);
            dcPrev[j] = dcn * fg + wci * diPre + wcf * dfPre;
            dg[j] = diPre;
            if (!coupled) dg[bf + j] = dfPre;
            dg[bg + j] = dgPre;
            dg[bo + j] = doPre;
        }
    }

    /** GRU state update h = n + z*(h_prev - n), written over {@code hp}; n and z at offsets of {@code gates}. */
    static void gruUpdate(float[] gates, int zi, int ni, float[] hp, int n) {
        int j = 0;
        for (; j <= n - L; j += L) {
            FloatVector z = FloatVector.fromArray(S, gates, zi + j), nn = FloatVector.fromArray(S, gates, ni + j);
            z.fma(FloatVector.fromArray(S, hp, j).sub(nn), nn).intoArray(hp, j);
        }
        for (; j < n; j++) hp[j] = (1f - gates[zi + j]) * gates[ni + j] + gates[zi + j] * hp[j];
    }

    /**
     * GRU backward from dh and the saved r, z, n, hn (at 0, H, 2H, 3H of {@code g}) and h_{t-1}: input-side
     * gradients [dr, dz, dn] into {@code dgi}, recurrent-side [dr, dz, dn*r] into {@code dgh}, dh*z into
     * {@code ddir}.
     */
    static void gruBackward(float[] dh, float[] g, float[] hp, int H, float[] dgi, float[] dgh, float[] ddir, int n) {
        int j = 0;
        for (; j <= n - L; j += L) {
            FloatVector vdh = FloatVector.fromArray(S, dh, j);
            FloatVector r = FloatVector.fromArray(S, g, j), z = FloatVector.fromArray(S, g, H + j);
            FloatVector nn = FloatVector.fromArray(S, g, 2 * H + j), hn = FloatVector.fromArray(S, g, 3 * H + j);
            FloatVector dnPre = vdh.mul(z.neg().add(1f)).mul(nn.mul(nn).neg().add(1f));
            FloatVector dzPre = vdh.mul(FloatVector.fromArray(S, hp, j).sub(nn)).mul(z).mul(z.neg().add(1f));
            FloatVector drPre = dnPre.mul(hn).mul(r).mul(r.neg().add(1f));
            vdh.mul(z).intoArray(ddir, j);
            drPre.intoArray(dgi, j);
            dzPre.intoArray(dgi, H + j);
            dnPre.intoArray(dgi, 2 * H + j);
            drPre.intoArray(dgh, j);
            dzPre.intoArray(dgh, H + j);
            dnPre.mul(r).intoArray(dgh, 2 * H + j);
        }
        for (; j < n; j++) {
            float vdh = dh[j], r = g[j], z = g[H + j], nn = g[2 * H + j], hn = g[3 * H + j];
            float dnPre = vdh * (1f - z) * (1f - nn * nn);
            float dzPre = vdh * (hp[j] - nn) * z * (1f - z);
            float drPre = dnPre * hn * r * (1f - r);
            ddir[j] = vdh * z;
            dgi[j] = drPre;
            dgi[H + j] = dzPre;
            dgi[2 * H + j] = dnPre;
            dgh[j] = drPre;
            dgh[H + j] = dzPre;
            dgh[2 * H + j] = dnPre * r;
        }
    }

    /**
     * Layer normalisation of v[0..H) in place: (v - mean) / sqrt(var + 1e-5) * gain + shift with the biased
     * variance, the normalised values into {@code xh} when it is not null; returns 1/sqrt(var + 1e-5). Sums run
     * in order, as in the device kernel.
     */
    static float lnForward(float[] v, int H, float[] gain, float[] shift, float[] xh) {
        float mean = 0f;
        for (int j = 0; j < H; j++) mean += v[j];
        mean /= H;
        float var = 0f;
        for (int j = 0; j < H; j++) {
            float c = v[j] - mean;
            var += c * c;
        }
        var /= H;
        float r = (float) (1.0 / Math.sqrt(var + 1e-5f));
        for (int j = 0; j < H; j++) {
            float x = (v[j] - mean) * r;
            if (xh != null) xh[j] = x;
            v[j] = x * gain[j] + shift[j];
        }
        return r;
    }

    /** Layer-norm backward: dv = r * (da*gain - mean(da*gain) - xh * mean(da*gain*xh)); dv may be da. */
    static void lnBackward(float[] da, int H, float[] gain, float[] xh, float r, float[] dv) {
        float m1 = 0f, m2 = 0f;
        for (int j = 0; j < H; j++) {
            float g = da[j] * gain[j];
            m1 += g;
            m2 += g * xh[j];
        }
        m1 /= H;
        m2 /= H;
        for (int j = 0; j < H; j++) dv[j] = r * (da[j] * gain[j] - m1 - xh[j] * m2);
    }

    /** RNN backward: dpre = dh * act'(y) with tanh' = 1 - y^2 and relu' = (y > 0), written over {@code dh}. */
    static void rnnBackward(float[] dh, float[] y, boolean relu, int n) {
        int j = 0;
        for (; j <= n - L; j += L) {
            FloatVector vdh = FloatVector.fromArray(S, dh, j), v = FloatVector.fromArray(S, y, j);
            FloatVector d = relu ? FloatVector.zero(S).blend(vdh, v.compare(VectorOperators.GT, 0f))
                    : vdh.mul(v.mul(v).neg().add(1f));
            d.intoArray(dh, j);
        }
        for (; j < n; j++) dh[j] = relu ? (y[j] > 0f ? dh[j] : 0f) : dh[j] * (1f - y[j] * y[j]);
    }
}
