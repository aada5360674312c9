package dev.recur.bench;

import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The device buffers of one training-kernel benchmark ({@code AdamStepBench}, {@code SoftmaxXentBench}, ...): opened
 * on the named backend, filled with float32 random data, closed together at the end of the trial.
 */
final class TrainBenchSupport implements AutoCloseable {
    final DeviceBackend be;
    private final List<DeviceBuffer> owned = new ArrayList<>();
    private final SplittableRandom rnd = new SplittableRandom(42);

    TrainBenchSupport(String backend) {
        this.be = (DeviceBackend) Backends.open(backend);
    }

    /** An F32 buffer of {@code n} values uniform in [lo, hi). */
    DeviceBuffer f32(long n, double lo, double hi) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n);
        owned.add(b);
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = (float) (lo == hi ? lo : rnd.nextDouble(lo, hi));
        be.upload(v, 0, b, 0, v.length);
        return b;
    }

    /** An I32 buffer of {@code n} values uniform in [0, bound). */
    DeviceBuffer i32(long n, int bound) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.I32, n);
        owned.add(b);
        int[] v = new int[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = rnd.nextInt(bound);
        be.upload(v, 0, b, 0, v.length);
        return b;
    }

    @Override
    public void close() {
        for (DeviceBuffer b : owned) b.close();
        be.close();
    }
}
