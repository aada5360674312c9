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
 * The {@code lstm_step_fwd} and {@code lstm_step_bwd} kernels alone, on every device backend, against a
 * float64 Java statement of the same pointwise math: both directions in one launch, variable lengths (an
 * inactive step leaves the state and writes zeros at its time position), peepholes, the coupled gate,
 * recurrent dropout of the state copy for the next GEMM, and the saved gates and c.
 */
class LstmStepTest {
    static final double TOL = 2e-6;
    static final int T = 4, B = 3, H = 5, D = 2;

    static Stream<Arguments> rows() {
        List<Arguments> a = new ArrayList<>();
        for (String be : DeviceRows.NAMES) {
            for (int variant = 0; variant < 4; variant++) {
                for (int s : new int[] {0, 2, 3}) a.add(Arguments.of(be, variant, s));
            }
        }
        return a.stream();
    }

    static float[] rand(SplittableRandom r, int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) r.nextDouble(-scale, scale);
        return f;
    }

    static double sig(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    DeviceBuffer up(DeviceBackend be, List<DeviceBuffer> owned, float[] v) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, v.length);
        owned.add(b);
        be.upload(v, 0, b, 0, v.length);
        return b;
    }

    float[] down(DeviceBackend be, DeviceBuffer b, int n) {
        float[] f = new float[n];
        be.download(b, 0, f, 0, n);
        return f;
    }

    static void check(String what, double expected, float actual) {
        if (!(Math.abs(expected - actual) <= TOL * Math.max(1, Math.abs(expected)))) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    /** variant bit 0: peepholes; bit 1: coupled gate. Step s with lengths {4, 3, 1}. */
    @ParameterizedTest(name = "{0}: variant {1} step {2}")
    @MethodSource("rows")
    void stepMatchesFloat64Math(String backend, int variant, int s) {
        DeviceBackend be = DeviceRows.backend(backend);
        boolean peep = (variant & 1) != 0, coupled = (variant & 2) != 0;
        int G = coupled ? 3 : 4, GH = G * H;
        int[] lengths = {4, 3, 1};
        SplittableRandom r = new SplittableRandom(1000 + variant * 10 + s);
        float[] xw = rand(r, T * B * D * GH, 1.5), hw = rand(r, D * B * GH, 1.5), bih = rand(r, D * GH, 0.5),
                bhh = rand(r, D * GH, 0.5), peepw = rand(r, D * 3 * H, 0.7), c = rand(r, D * B * H, 1),
                h = rand(r, D * B * H, 1), y = rand(r, T * B * D * H, 1);
        long seed = 0x1234_5678_9abcdefL;
        double p = 0.3;
        int thresh = DropoutMask.threshold(p);
        float scale = (float) (1 / (1 - p));
        int layer = 1;
        List<DeviceBuffer> owned = new ArrayList<>();
        try {
            DeviceBuffer len = be.allocate(DeviceBuffer.Type.I32, B);
            owned.add(len);
            be.upload(lengths, 0, len, 0, B);
            DeviceBuffer dXw = up(be, owned, xw), dHw = up(be, owned, hw), dBih = up(be, owned, bih),
                    dBhh = up(be, owned, bhh), dPeep = up(be, owned, peepw), dC = up(be, owned, c), dH = up(be, owned, h),
                    dHin = up(be, owned, new float[D * B * H]), dY = up(be, owned, y),
                    gsave = up(be, owned, new float[T * B * D * GH]), csave = up(be, owned, new float[T * B * D * H]);
            be.launch(Kernels.LSTM_STEP_FWD, new long[] {H, B, D}, s, T, B, H, D, H, 0, peep ? 1 : 0, coupled ? 1 : 0, 1,
                    len, dXw, dHw, dBih, dBhh, dPeep, dC, dH, dHin, dY, gsave, csave, dPeep, dPeep,
                    (int) seed, (int) (seed >>> 32), layer, thresh, scale);
            float[] gC = down(be, dC, D * B * H), gH = down(be, dH, D * B * H), gHin = down(be, dHin, D * B * H),
                    gY = down(be, dY, T * B * D * H), gG = down(be, gsave, T * B * D * GH),
                    gCs = down(be, csave, T * B * D * H);
            for (int d = 0; d < D; d++) {
                for (int b = 0; b < B; b++) {
                    for (int j = 0; j < H; j++) {
                        int sh = (d * B + b) * H + j;
                        String at = "d=" + d + " b=" + b + " j=" + j + " s=" + s;
                        if (s >= lengths[b]) {
                            check("c unchanged " + at, c[sh], gC[sh]);
                            check("h unchanged " + at, h[sh], gH[sh]);
                            check("y zero at padded position " + at, 0, gY[((s * B + b) * D + d) * H + j]);
                            continue;
                        }
                        int t = d == 0 ? s : lengths[b] - 1 - s;
                        double[] pre = new double[G];
                        for (int k = 0; k < G; k++) {
                            int col = k * H + j;
                            pre[k] = (double) xw[((t * B + b) * D + d) * GH + col] + hw[(d * B + b) * GH + col]
                                    + bih[d * GH + col] + bhh[d * GH + col];
                        }
                        double cp = c[sh];
                        double wci = peep ? peepw[(d * 3) * H + j] : 0, wcf = peep ? peepw[(d * 3 + 1) * H + j] : 0,
                                wco = peep ? peepw[(d * 3 + 2) * H + j] : 0;
                        double i = sig(pre[0] + wci * cp);
                        double f = coupled ? 1 - i : sig(pre[1] + wcf * cp);
                        double g = Math.tanh(pre[coupled ? 1 : 2]);
                        double cn = f * cp + i * g;
                        double o = sig(pre[coupled ? 2 : 3] + wco * cn);
                        double hn = o * Math.tanh(cn);
                        check("c " + at, cn, gC[sh]);
                        check("h " + at, hn, gH[sh]);
                        check("y " + at, hn, gY[((t * B + b) * D + d) * H + j]);
                        double mask = DropoutMask.value(seed, DropoutMask.stream(layer, d, DropoutMask.RECURRENT), b * H + j, p);
                        check("hin (masked h) " + at, hn * mask, gHin[sh]);
                        int so = ((t * B + b) * D + d) * GH + j;
                        check("saved i " + at, i, gG[so]);
                        if (!coupled) check("saved f " + at, f, gG[so + H]);
                        check("saved g " + at, g, gG[so + (coupled ? H : 2 * H)]);
                        check("saved o " + at, o, gG[so + (coupled ? 2 * H : 3 * H)]);
                        check("saved c " + at, cn, gCs[((t * B + b) * D + d) * H + j]);
                    }
                }
            }
        } finally {
            for (DeviceBuffer b : owned) b.close();
        }
    }

    @ParameterizedTest(name = "{0}: variant {1} step {2}")
    @MethodSource("rows")
    void backwardStepMatchesFloat64Math(String backend, int variant, int s) {
        DeviceBackend be = DeviceRows.backend(backend);
        boolean peep = (variant & 1) != 0, coupled = (variant & 2) != 0;
        int G = coupled ? 3 : 4, GH = G * H;
        int[] lengths = {4, 3, 1};
        SplittableRandom r = new SplittableRandom(2000 + variant * 10 + s);
        float[] gates = new float[T * B * D * GH];
        for (int i = 0; i < gates.length; i++) gates[i] = (float) r.nextDouble(0.05, 0.95);
        // The g block is a tanh: give it values in (-1, 1).
        for (int t = 0; t < T; t++) for (int b = 0; b < B; b++) for (int d = 0; d < D; d++) for (int j = 0; j < H; j++) {
            gates[((t * B + b) * D + d) * GH + (coupled ? H : 2 * H) + j] = (float) r.nextDouble(-0.95, 0.95);
        }
        float[] csave = rand(r, T * B * D * H, 1.2), c0 = rand(r, D * B * H, 1), peepw = rand(r, D * 3 * H, 0.7),
                dy = rand(r, T * B * D * H, 1), dhN = rand(r, D * B * H, 1), dhrec = rand(r, D * B * H, 1),
                dcN = rand(r, D * B * H, 1), dc = rand(r, D * B * H, 1);
        long seed = 99L;
        double p = 0.25;
        int thresh = DropoutMask.threshold(p);
        float scale = (float) (1 / (1 - p));
        int layer = 0;
        List<DeviceBuffer> owned = new ArrayList<>();
        try {
            DeviceBuffer len = be.allocate(DeviceBuffer.Type.I32, B);
            owned.add(len);
            be.upload(lengths, 0, len, 0, B);
            DeviceBuffer dDy = up(be, owned, dy), dDhN = up(be, owned, dhN), dDhrec = up(be, owned, dhrec),
                    dDcN = up(be, owned, dcN), dDc = up(be, owned, dc), dG = up(be, owned, gates),
                    dCs = up(be, owned, csave), dC0 = up(be, owned, c0), dPeep = up(be, owned, peepw),
                    dgs = up(be, owned, rand(r, D * B * GH, 1)), dgall = up(be, owned, rand(r, T * B * D * GH, 1));
            be.launch(Kernels.LSTM_STEP_BWD, new long[] {H, B, D}, s, T, B, H, D, H, 0, peep ? 1 : 0, coupled ? 1 : 0,
                    len, dDy, dDhN, dDhrec, dPeep, dDcN, dDc, dG, dCs, dC0, dPeep, dgs, dgall,
                    (int) seed, (int) (seed >>> 32), layer, thresh, scale);
            float[] gDc = down(be, dDc, D * B * H), gDgs = down(be, dgs, D * B * GH), gDgall = down(be, dgall, T * B * D * GH);
            for (int d = 0; d < D; d++) {
                for (int b = 0; b < B; b++) {
                    int len_b = lengths[b];
                    for (int j = 0; j < H; j++) {
                        int sh = (d * B + b) * H + j;
                        String at = "d=" + d + " b=" + b + " j=" + j + " s=" + s;
                        if (s >= len_b) {
                            check("dc unchanged " + at, dc[sh], gDc[sh]);
                            for (int k = 0; k < G; k++) {
                                check("dgs zero " + at, 0, gDgs[(d * B + b) * GH + k * H + j]);
                                check("dgall zero at padded position " + at, 0, gDgall[((s * B + b) * D + d) * GH + k * H + j]);
                            }
                            continue;
                        }
                        int t = d == 0 ? s : len_b - 1 - s;
                        boolean first = d == 0 ? t == 0 : t == len_b - 1;
                        int tp = d == 0 ? t - 1 : t + 1;
                        double mask = DropoutMask.value(seed, DropoutMask.stream(layer, d, DropoutMask.RECURRENT), b * H + j, p);
                        double dh = (s == len_b - 1 ? dhN[sh] : dhrec[sh] * mask) + dy[((t * B + b) * D + d) * H + j];
                        double dcin = s == len_b - 1 ? dcN[sh] : dc[sh];
                        double cp = first ? c0[sh] : csave[((tp * B + b) * D + d) * H + j];
                        double cn = csave[((t * B + b) * D + d) * H + j];
                        int go = ((t * B + b) * D + d) * GH + j;
                        double i = gates[go], f = coupled ? 1 - i : gates[go + H], g = gates[go + (coupled ? H : 2 * H)],
                                o = gates[go + (coupled ? 2 * H : 3 * H)];
                        double wci = peep ? peepw[(d * 3) * H + j] : 0, wcf = peep ? peepw[(d * 3 + 1) * H + j] : 0,
                                wco = peep ? peepw[(d * 3 + 2) * H + j] : 0;
                        // h = o tanh(c); c = f cp + i g; o sees c through the peephole.
                        double tc = Math.tanh(cn);
                        double dOpre = dh * tc * o * (1 - o);
                        double dC = dcin + dh * o * (1 - tc * tc) + wco * dOpre;
                        double dIpre = (coupled ? dC * (g - cp) : dC * g) * i * (1 - i);
                        double dFpre = coupled ? 0 : dC * cp * f * (1 - f);
                        double dGpre = dC * i * (1 - g * g);
                        double dCprev = dC * f + wci * dIpre + wcf * dFpre;
                        check("dc_{t-1} " + at, dCprev, gDc[sh]);
                        double[] want = coupled ? new double[] {dIpre, dGpre, dOpre} : new double[] {dIpre, dFpre, dGpre, dOpre};
                        for (int k = 0; k < G; k++) {
                            check("dgs gate " + k + " " + at, want[k], gDgs[(d * B + b) * GH + k * H + j]);
                            check("dgall gate " + k + " " + at, want[k], gDgall[go + k * H]);
                        }
                    }
                }
            }
        } finally {
            for (DeviceBuffer b : owned) b.close();
        }
    }
}
