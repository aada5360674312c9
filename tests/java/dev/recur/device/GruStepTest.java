package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.config.DropoutMask;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * The {@code gru_step_fwd} and {@code gru_step_bwd} kernels (reset gate after the matmul) alone, on every
 * device backend, against a float64 Java statement of the same pointwise math: both directions, variable
 * lengths, recurrent dropout, saved r, z, n, hn, and the two sides of the gate gradients.
 */
class GruStepTest {
    static final double TOL = 2e-6;
    static final int T = 4, B = 3, H = 6, D = 2;
    static final int[] LENGTHS = {4, 2, 1};

    static Stream<Arguments> rows() {
        List<Arguments> a = new ArrayList<>();
        for (String be : DeviceRows.NAMES) for (int s : new int[] {0, 1, 3}) a.add(Arguments.of(be, s));
        return a.stream();
    }

    static float[] rand(SplittableRandom r, int n, double lo, double hi) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) r.nextDouble(lo, hi);
        return f;
    }

    static double sig(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    static void check(String what, double expected, float actual) {
        if (!(Math.abs(expected - actual) <= TOL * Math.max(1, Math.abs(expected)))) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    static DeviceBuffer up(DeviceBackend be, List<DeviceBuffer> owned, float[] v) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, v.length);
        owned.add(b);
        be.upload(v, 0, b, 0, v.length);
        return b;
    }

    static DeviceBuffer lengths(DeviceBackend be, List<DeviceBuffer> owned) {
        DeviceBuffer len = be.allocate(DeviceBuffer.Type.I32, B);
        owned.add(len);
        be.upload(LENGTHS, 0, len, 0, B);
        return len;
    }

    static float[] down(DeviceBackend be, DeviceBuffer b) {
        float[] f = new float[(int) b.size()];
        be.download(b, 0, f, 0, f.length);
        return f;
    }

    @ParameterizedTest(name = "{0}: step {1}")
    @MethodSource("rows")
    void forwardStepMatchesFloat64Math(String backend, int s) {
        DeviceBackend be = DeviceRows.backend(backend);
        int GH = 3 * H;
        SplittableRandom r = new SplittableRandom(300 + s);
        float[] xw = rand(r, T * B * D * GH, -1.5, 1.5), hw = rand(r, D * B * GH, -1.5, 1.5),
                bih = rand(r, D * GH, -0.5, 0.5), bhh = rand(r, D * GH, -0.5, 0.5), h = rand(r, D * B * H, -1, 1),
                y = rand(r, T * B * D * H, -1, 1);
        long seed = -77L;
        double p = 0.4;
        List<DeviceBuffer> owned = new ArrayList<>();
        try {
            DeviceBuffer dH = up(be, owned, h), dHin = up(be, owned, new float[D * B * H]), dY = up(be, owned, y),
                    gsave = up(be, owned, rand(r, T * B * D * 4 * H, -9, 9));
            be.launch(Kernels.GRU_STEP_FWD, new long[] {H, B, D}, s, T, B, H, D, 1, lengths(be, owned), up(be, owned, xw),
                    up(be, owned, hw), up(be, owned, bih), up(be, owned, bhh), dH, dHin, dY, gsave, (int) seed,
                    (int) (seed >>> 32), 2, DropoutMask.threshold(p), (float) (1 / (1 - p)));
            float[] gH = down(be, dH), gHin = down(be, dHin), gY = down(be, dY), gG = down(be, gsave);
            for (int d = 0; d < D; d++) for (int b = 0; b < B; b++) for (int j = 0; j < H; j++) {
                int sh = (d * B + b) * H + j;
                String at = "d=" + d + " b=" + b + " j=" + j + " s=" + s;
                if (s >= LENGTHS[b]) {
                    check("h unchanged " + at, h[sh], gH[sh]);
                    check("y zero at padded position " + at, 0, gY[((s * B + b) * D + d) * H + j]);
                    for (int k = 0; k < 4; k++) check("saved zero at padded position " + at, 0, gG[((s * B + b) * D + d) * 4 * H + k * H + j]);
                    continue;
                }
                int t = d == 0 ? s : LENGTHS[b] - 1 - s;
                int xo = ((t * B + b) * D + d) * GH + j, ho = (d * B + b) * GH + j, bo = d * GH + j;
                double rr = sig((double) xw[xo] + hw[ho] + bih[bo] + bhh[bo]);
                double z = sig((double) xw[xo + H] + hw[ho + H] + bih[bo + H] + bhh[bo + H]);
                double hn = (double) hw[ho + 2 * H] + bhh[bo + 2 * H];
                double n = Math.tanh((double) xw[xo + 2 * H] + bih[bo + 2 * H] + rr * hn);
                double hv = (1 - z) * n + z * h[sh];
                check("h " + at, hv, gH[sh]);
                check("y " + at, hv, gY[((t * B + b) * D + d) * H + j]);
                check("hin " + at, hv * DropoutMask.value(seed, DropoutMask.stream(2, d, DropoutMask.RECURRENT), b * H + j, p), gHin[sh]);
                int go = ((t * B + b) * D + d) * 4 * H + j;
                check("saved r " + at, rr, gG[go]);
                check("saved z " + at, z, gG[go + H]);
                check("saved n " + at, n, gG[go + 2 * H]);
                check("saved hn " + at, hn, gG[go + 3 * H]);
            }
        } finally {
            for (DeviceBuffer b : owned) b.close();
        }
    }

    @ParameterizedTest(name = "{0}: step {1}")
    @MethodSource("rows")
    void backwardStepMatchesFloat64Math(String backend, int s) {
        DeviceBackend be = DeviceRows.backend(backend);
        int GH = 3 * H;
        SplittableRandom r = new SplittableRandom(400 + s);
        float[] gates = rand(r, T * B * D * 4 * H, 0.05, 0.95);
        for (int i = 0; i < gates.length; i++) {
            int blk = (i / H) % 4;
            if (blk == 2) gates[i] = (float) r.nextDouble(-0.95, 0.95);
            if (blk == 3) gates[i] = (float) r.nextDouble(-2, 2);
        }
        float[] dy = rand(r, T * B * D * H, -1, 1), dhN = rand(r, D * B * H, -1, 1), dhrec = rand(r, D * B * H, -1, 1),
                ddir = rand(r, D * B * H, -1, 1), y = rand(r, T * B * D * H, -1, 1), h0 = rand(r, D * B * H, -1, 1);
        long seed = 1L << 40;
        double p = 0.3;
        List<DeviceBuffer> owned = new ArrayList<>();
        try {
            DeviceBuffer dDdir = up(be, owned, ddir), dgs = up(be, owned, rand(r, D * B * GH, -1, 1)),
                    dgall = up(be, owned, rand(r, T * B * D * GH, -1, 1)), dgallh = up(be, owned, rand(r, T * B * D * GH, -1, 1));
            be.launch(Kernels.GRU_STEP_BWD, new long[] {H, B, D}, s, T, B, H, D, lengths(be, owned), up(be, owned, dy),
                    up(be, owned, dhN), up(be, owned, dhrec), dDdir, up(be, owned, gates), up(be, owned, y),
                    up(be, owned, h0), dgs, dgall, dgallh, (int) seed, (int) (seed >>> 32), 0, DropoutMask.threshold(p),
                    (float) (1 / (1 - p)));
            float[] gDdir = down(be, dDdir), gDgs = down(be, dgs), gDgall = down(be, dgall), gDgallh = down(be, dgallh);
            for (int d = 0; d < D; d++) for (int b = 0; b < B; b++) for (int j = 0; j < H; j++) {
                int sh = (d * B + b) * H + j, len = LENGTHS[b];
                String at = "d=" + d + " b=" + b + " j=" + j + " s=" + s;
                if (s >= len) {
                    check("ddir unchanged " + at, ddir[sh], gDdir[sh]);
                    for (int k = 0; k < 3; k++) {
                        check("dgs zero " + at, 0, gDgs[(d * B + b) * GH + k * H + j]);
                        check("dgall zero at padded position " + at, 0, gDgall[((s * B + b) * D + d) * GH + k * H + j]);
                        check("dgallh zero at padded position " + at, 0, gDgallh[((s * B + b) * D + d) * GH + k * H + j]);
                    }
                    continue;
                }
                int t = d == 0 ? s : len - 1 - s;
                boolean first = d == 0 ? t == 0 : t == len - 1;
                int tp = d == 0 ? t - 1 : t + 1;
                double mask = DropoutMask.value(seed, DropoutMask.stream(0, d, DropoutMask.RECURRENT), b * H + j, p);
                double dh = (s == len - 1 ? dhN[sh] : dhrec[sh] * mask + ddir[sh]) + dy[((t * B + b) * D + d) * H + j];
                int go = ((t * B + b) * D + d) * 4 * H + j;
                double rr = gates[go], z = gates[go + H], n = gates[go + 2 * H], hn = gates[go + 3 * H];
                double hp = first ? h0[sh] : y[((tp * B + b) * D + d) * H + j];
                double dn = dh * (1 - z) * (1 - n * n);
                double dz = dh * (hp - n) * z * (1 - z);
                double dr = dn * hn * rr * (1 - rr);
                check("ddir " + at, dh * z, gDdir[sh]);
                int so = (d * B + b) * GH + j, ao = ((t * B + b) * D + d) * GH + j;
                double[] ih = {dr, dz, dn}, hh = {dr, dz, dn * rr};
                for (int k = 0; k < 3; k++) {
                    check("dgs " + k + " " + at, hh[k], gDgs[so + k * H]);
                    check("dgall " + k + " " + at, ih[k], gDgall[ao + k * H]);
                    check("dgallh " + k + " " + at, hh[k], gDgallh[ao + k * H]);
                }
            }
        } finally {
            for (DeviceBuffer b : owned) b.close();
        }
    }
}
