package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;

/**
 * The training kernels composed as a trainer will use them, on every device backend: a bigram language model
 * (embedding, a linear layer with bias, masked cross-entropy) trained for a few AdamW steps with global-norm clipping,
 * where each step uploads only the batch (ids and targets) and downloads only the 4-byte mean loss. Parameter groups:
 * the embedding and the bias without weight decay, the weight with it; the norm is summed over three gradient
 * buffers into one parts buffer. The losses and the final parameters are checked against the same model in float64
 * ({@link ReferenceTrainKernels} and plain loops).
 */
class TrainStepTest {
    static final int V = 23, E = 8, N = 30, PAD = 0, STEPS = 6;
    static final float LR = 0.05f, B1 = 0.9f, B2 = 0.999f, EPS = 1e-8f, WD = 0.01f, MAX_NORM = 0.2f;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** The float64 model: emb [V,E], w [V,E], bias [V], with Adam moments per parameter array. */
    static final class Model {
        final double[][] p = new double[3][], m = new double[3][], v = new double[3][];

        Model(double[] emb, double[] w, double[] bias) {
            p[0] = emb.clone();
            p[1] = w.clone();
            p[2] = bias.clone();
            for (int i = 0; i < 3; i++) {
                m[i] = new double[p[i].length];
                v[i] = new double[p[i].length];
            }
        }

        /** One step; returns the mean loss before the update. */
        double step(int t, int[] ids, int[] targets) {
            double[] h = ReferenceTrainKernels.embeddingFwd(N, E, V, ids, p[0]);
            double[] logits = new double[N * V];
            for (int n = 0; n < N; n++) {
                for (int j = 0; j < V; j++) {
                    double s = p[2][j];
                    for (int e = 0; e < E; e++) s += h[n * E + e] * p[1][j * E + e];
                    logits[n * V + j] = s;
                }
            }
            double[] loss = new double[N], dl = new double[N * V];
            ReferenceTrainKernels.softmaxXentFwdBwd(N, V, PAD, logits, targets, loss, dl);
            double mean = ReferenceTrainKernels.softmaxXentMean(N, PAD, targets, loss);
            double[][] g = {new double[V * E], new double[V * E], new double[V]};
            double[] dh = new double[N * E];
            for (int n = 0; n < N; n++) {
                for (int j = 0; j < V; j++) {
                    double d = dl[n * V + j];
                    g[2][j] += d;
                    for (int e = 0; e < E; e++) {
                        g[1][j * E + e] += d * h[n * E + e];
                        dh[n * E + e] += d * p[1][j * E + e];
                    }
                }
            }
            ReferenceTrainKernels.embeddingBwd(N, E, V, PAD, ids, dh, g[0], 0);
            double ss = 0;
            for (double[] gi : g) for (double x : gi) ss += x * x;
            double scale = ReferenceTrainKernels.gradClipScale(Math.sqrt(ss), MAX_NORM);
            for (int i = 0; i < 3; i++) {
                ReferenceTrainKernels.adamStep(0, p[i].length, t, LR, B1, B2, EPS, i == 1 ? WD : 0, true, scale, p[i],
                        g[i], m[i], v[i]);
            }
            return mean;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void aFewClippedAdamWStepsMatchFloat64(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(17);
        double[] emb = TrainTestSupport.random(r, V * E, 0.5), w = TrainTestSupport.random(r, V * E, 0.5),
                bias = TrainTestSupport.random(r, V, 0.1);
        Model ref = new Model(emb, w, bias);
        try (TrainTestSupport.Bufs b = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer[] p = {b.f32(emb), b.f32(w), b.f32(bias)};
            DeviceBuffer[] g = {b.f32(V * E, 0), b.f32(V * E, 0), b.f32(V, 0)};
            DeviceBuffer[] m = {b.f32(V * E, 0), b.f32(V * E, 0), b.f32(V, 0)};
            DeviceBuffer[] v = {b.f32(V * E, 0), b.f32(V * E, 0), b.f32(V, 0)};
            int[] sizes = {V * E, V * E, V};
            DeviceBuffer ids = b.i32(N, 0), targets = b.i32(N, 0), h = b.f32(N * E, 0), logits = b.f32(N * V, 0),
                    loss = b.f32(N, 0), mean = b.f32(1, 0), dh = b.f32(N * E, 0), start = b.i32(V + 1, 0),
                    order = b.i32(N, 0), parts = b.f32(3, 0), norm = b.f32(1, 0), scale = b.f32(1, 0);
            int clipped = 0;
            for (int t = 1; t <= STEPS; t++) {
                // A batch of bigrams: predict the next id; every fifth target is padding.
                int[] x = new int[N], y = new int[N];
                for (int n = 0; n < N; n++) {
                    x[n] = 1 + r.nextInt(V - 1);
                    y[n] = n % 5 == 4 ? PAD : 1 + (x[n] * 7) % (V - 1);
                }
                x[3] = PAD;
                be.upload(x, 0, ids, 0, N);
                be.upload(y, 0, targets, 0, N);
                // Forward: h = emb[ids]; logits = h W^T + bias; loss and dlogits (in place).
                TrainKernels.embeddingFwd(be, N, E, V, ids, p[0], h);
                be.gemm(false, true, N, V, E, 1f, h, 0, E, p[1], 0, E, 0f, logits, 0, V);
                TrainKernels.biasActFwd(be, N, V, TrainKernels.Act.IDENTITY, logits, p[2], logits);
                TrainKernels.softmaxXentFwdBwd(be, N, V, PAD, logits, targets, loss, logits);
                TrainKernels.softmaxXentMean(be, N, PAD, targets, loss, mean);
                // Backward: dbias = col sums, dW = dlogits^T h, dh = dlogits W, demb by id.
                be.launch(Kernels.COL_SUM, new long[] {V}, N, V, logits, g[2], 0f);
                be.gemm(true, false, V, E, N, 1f, logits, 0, V, h, 0, E, 0f, g[1], 0, E);
                be.gemm(false, false, N, E, V, 1f, logits, 0, V, p[1], 0, E, 0f, dh, 0, E);
                TrainKernels.embeddingBwd(be, N, E, V, PAD, ids, dh, start, order, g[0], 0f);
                // Clip over all three gradient buffers, then one AdamW launch per group.
                int q = 0;
                for (int i = 0; i < 3; i++) q += TrainKernels.gradNormPartial(be, g[i], 0, sizes[i], parts, q);
                TrainKernels.gradClipScale(be, parts, q, MAX_NORM, norm, scale);
                for (int i = 0; i < 3; i++) {
                    TrainKernels.adamStep(be, p[i], g[i], m[i], v[i], scale, 0, sizes[i], t, LR, B1, B2, EPS,
                            i == 1 ? WD : 0f, true);
                }
                float[] got = new float[1];
                be.download(mean, 0, got, 0, 1);
                double want = ref.step(t, x, y);
                assertClose(backend + " mean loss at step " + t, new double[] {want}, new double[] {got[0]}, 1e-5);
                if (b.get(scale, 1)[0] < 1) clipped++;   // the test's own look; a trainer reads nothing but the loss
            }
            String[] names = {"embedding", "weight", "bias"};
            for (int i = 0; i < 3; i++) {
                assertClose(backend + " " + names[i] + " after " + STEPS + " steps", ref.p[i], b.get(p[i], sizes[i]), 1e-4);
            }
            if (clipped == 0) throw new AssertionError(backend + ": no step was clipped: the test would not cover clipping");
        }
    }
}
