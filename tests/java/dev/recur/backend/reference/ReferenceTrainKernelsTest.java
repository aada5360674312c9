package dev.recur.backend.reference;

import dev.recur.io.SafeTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static dev.recur.device.TrainTestSupport.assertClose;
import static dev.recur.device.TrainTestSupport.doubles;
import static dev.recur.device.TrainTestSupport.fixture;
import static dev.recur.device.TrainTestSupport.ints;
import static dev.recur.device.TrainTestSupport.meta;

/**
 * The float64 oracle of the training kernels ({@link ReferenceTrainKernels}) against PyTorch 1.13 in float64
 * ({@code tests/fixtures/make_train_fixtures.py}): Adam and AdamW with weight decay over 5 steps, SGD with momentum
 * and dampening, Nesterov and none, {@code clip_grad_norm_} clipping and not, cross-entropy with
 * {@code ignore_index}, and the embedding gradient with {@code padding_idx}. Agreement to 1e-12 relative.
 */
class ReferenceTrainKernelsTest {
    static final double TOL = 1e-12;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"adam_wd", "adamw_wd"})
    void adamMatchesTorch(String name) {
        SafeTensors f = fixture(name);
        int n = (int) meta(f, "n"), steps = (int) meta(f, "steps");
        double[] p = doubles(f, "p0"), grads = doubles(f, "grads"), want = doubles(f, "p");
        double[] m = new double[n], v = new double[n];
        for (int s = 0; s < steps; s++) {
            double[] g = java.util.Arrays.copyOfRange(grads, s * n, (s + 1) * n);
            ReferenceTrainKernels.adamStep(0, n, s + 1, meta(f, "lr"), meta(f, "beta1"), meta(f, "beta2"),
                    meta(f, "eps"), meta(f, "wd"), meta(f, "decoupled") != 0, 1.0, p, g, m, v);
            assertClose(name + " p after step " + (s + 1), java.util.Arrays.copyOfRange(want, s * n, (s + 1) * n), p, TOL);
        }
        assertClose(name + " m", doubles(f, "m"), m, TOL);
        assertClose(name + " v", doubles(f, "v"), v, TOL);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"sgd_momentum", "sgd_nesterov", "sgd_plain"})
    void sgdMatchesTorch(String name) {
        SafeTensors f = fixture(name);
        int n = (int) meta(f, "n"), steps = (int) meta(f, "steps");
        double[] p = doubles(f, "p0"), grads = doubles(f, "grads"), want = doubles(f, "p");
        double[] buf = new double[n];
        double mom = meta(f, "momentum");
        for (int s = 0; s < steps; s++) {
            double[] g = java.util.Arrays.copyOfRange(grads, s * n, (s + 1) * n);
            ReferenceTrainKernels.sgdStep(0, n, s == 0, meta(f, "lr"), mom, meta(f, "dampening"), meta(f, "wd"),
                    meta(f, "nesterov") != 0, 1.0, p, g, buf);
            assertClose(name + " p after step " + (s + 1), java.util.Arrays.copyOfRange(want, s * n, (s + 1) * n), p, TOL);
        }
        if (mom != 0) assertClose(name + " momentum buffer", doubles(f, "buf"), buf, TOL);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"clip_active", "clip_inactive"})
    void clipMatchesTorch(String name) {
        SafeTensors f = fixture(name);
        double[] g = doubles(f, "grad");
        double norm = ReferenceTrainKernels.gradNorm(g, 0, g.length);
        assertClose(name + " total norm", doubles(f, "total_norm"), new double[] {norm}, TOL);
        double scale = ReferenceTrainKernels.gradClipScale(norm, meta(f, "max_norm"));
        double[] clipped = g.clone();
        for (int i = 0; i < clipped.length; i++) clipped[i] *= scale;
        assertClose(name + " clipped gradient", doubles(f, "clipped"), clipped, TOL);
        if (name.equals("clip_inactive") && scale != 1.0) throw new AssertionError("clip_inactive: scale " + scale + " != 1");
        if (name.equals("clip_active") && !(scale < 1.0)) throw new AssertionError("clip_active: scale " + scale + " not < 1");
    }

    @Test
    void crossEntropyWithIgnoreIndexMatchesTorch() {
        SafeTensors f = fixture("xent_ignore");
        int N = (int) meta(f, "N"), V = (int) meta(f, "V"), pad = (int) meta(f, "pad");
        int[] targets = ints(f, "targets");
        double[] loss = new double[N], dlogits = new double[N * V];
        ReferenceTrainKernels.softmaxXentFwdBwd(N, V, pad, doubles(f, "logits"), targets, loss, dlogits);
        assertClose("per-row loss", doubles(f, "loss_rows"), loss, TOL);
        assertClose("dlogits", doubles(f, "dlogits"), dlogits, TOL);
        assertClose("mean loss", doubles(f, "loss"),
                new double[] {ReferenceTrainKernels.softmaxXentMean(N, pad, targets, loss)}, TOL);
    }

    @Test
    void embeddingWithPaddingIdxMatchesTorch() {
        SafeTensors f = fixture("embedding_pad");
        int V = (int) meta(f, "V"), E = (int) meta(f, "E"), N = (int) meta(f, "N"), pad = (int) meta(f, "pad");
        int[] ids = ints(f, "ids");
        assertClose("lookup", doubles(f, "out"), ReferenceTrainKernels.embeddingFwd(N, E, V, ids, doubles(f, "weight")), TOL);
        double[] dw = new double[V * E];
        ReferenceTrainKernels.embeddingBwd(N, E, V, pad, ids, doubles(f, "dout"), dw, 0);
        assertClose("weight gradient", doubles(f, "dweight"), dw, TOL);
    }
}
