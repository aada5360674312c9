package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.io.SafeTensors;
import dev.recur.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What the tests of {@link dev.recur.backend.TrainKernels} share: the PyTorch fixtures of
 * {@code tests/fixtures/train} ({@code make_train_fixtures.py}), float32-exact random data, and a set of device
 * buffers that closes together, with float64 views of their contents for {@link DeviceTestSupport#assertClose}.
 */
public final class TrainTestSupport {
    private TrainTestSupport() {}

    /** A fixture file {@code fixtures/train/<name>.safetensors}. */
    public static SafeTensors fixture(String name) {
        URL url = TrainTestSupport.class.getClassLoader().getResource("fixtures/train/" + name + ".safetensors");
        if (url == null) throw new IllegalStateException("fixtures/train/" + name + ".safetensors is not on the test classpath");
        try {
            return SafeTensors.read(Path.of(url.toURI()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static double[] doubles(SafeTensors f, String name) {
        return f.tensor(name).data().clone();
    }

    public static int[] ints(SafeTensors f, String name) {
        double[] d = f.tensor(name).data();
        int[] out = new int[d.length];
        for (int i = 0; i < d.length; i++) out[i] = (int) d[i];
        return out;
    }

    public static double meta(SafeTensors f, String key) {
        String v = f.metadata().get(key);
        if (v == null) throw new IllegalStateException("fixture " + f.file() + " has no metadata '" + key + "'");
        return Double.parseDouble(v);
    }

    /** {@code n} values uniform in [-scale, scale), each exactly a float32. */
    public static double[] random(SplittableRandom r, int n, double scale) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = (float) r.nextDouble(-scale, scale);
        return d;
    }

    /** Fails naming {@code what} unless {@code got} equals {@code want} element for element. */
    public static void assertInts(String what, int[] want, int[] got) {
        for (int i = 0; i < want.length; i++) {
            if (want[i] != got[i]) throw new AssertionError(what + " at " + i + ": expected " + want[i] + ", got " + got[i]);
        }
    }

    /** {@link DeviceTestSupport#assertClose} over flat arrays. */
    public static void assertClose(String what, double[] ref, double[] got, double tol) {
        DeviceTestSupport.assertClose(what, "", Tensor.of(ref.clone(), ref.length), Tensor.of(got.clone(), got.length), tol);
    }

    /** Device buffers of one test, closed together. */
    public static final class Bufs implements AutoCloseable {
        public final DeviceBackend be;
        private final List<DeviceBuffer> owned = new ArrayList<>();

        public Bufs(DeviceBackend be) {
            this.be = be;
        }

        public DeviceBuffer f32(double[] data) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, Math.max(1, data.length));
            owned.add(b);
            be.uploadDoubles(data, 0, b, 0, data.length);
            return b;
        }

        public DeviceBuffer f32(int n, double fill) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n);
            owned.add(b);
            be.fill(b, 0, n, fill);
            return b;
        }

        public DeviceBuffer i32(int[] data) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.I32, Math.max(1, data.length));
            owned.add(b);
            be.upload(data, 0, b, 0, data.length);
            return b;
        }

        public DeviceBuffer i32(int n, int fill) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.I32, n);
            owned.add(b);
            be.fill(b, 0, n, fill);
            return b;
        }

        public double[] get(DeviceBuffer b, int n) {
            double[] out = new double[n];
            be.downloadDoubles(b, 0, out, 0, n);
            return out;
        }

        public int[] geti(DeviceBuffer b, int n) {
            int[] out = new int[n];
            be.download(b, 0, out, 0, n);
            return out;
        }

        @Override
        public void close() {
            for (DeviceBuffer b : owned) b.close();
        }
    }
    /**
     * A device loss curve against the float64 reference's: each step within {@code tol * max(1, |ref|)}, failing with
     * {@code what}, the step and both values. Returns the largest relative difference, which the trainer tests print.
     */
    public static double assertLossCurveFollows(String what, double[] ref, double[] dev, double tol) {
        org.junit.jupiter.api.Assertions.assertEquals(ref.length, dev.length, what + ": steps");
        double worst = 0;
        for (int s = 0; s < ref.length; s++) {
            double diff = Math.abs(ref[s] - dev[s]), bound = tol * Math.max(1, Math.abs(ref[s]));
            worst = Math.max(worst, diff / Math.max(1, Math.abs(ref[s])));
            org.junit.jupiter.api.Assertions.assertTrue(diff <= bound, what + ": loss at step " + s + ": expected (reference) "
                    + ref[s] + ", got " + dev[s] + " (|diff| " + diff + " > " + bound + ")");
        }
        return worst;
    }
}
