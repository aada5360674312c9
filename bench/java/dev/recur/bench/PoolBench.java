package dev.recur.bench;

import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * {@code pool_mean_fwd} + {@code pool_mean_bwd} and {@code pool_max_fwd} + {@code pool_max_bwd} over time-major
 * outputs {@code [T, B, W]} (a many-to-one head's pooling, forward and backward, every sequence at full length), plus
 * {@code finish()}: each element of the outputs is read once and its gradient written once, 8 bytes per element.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class PoolBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"50"})
    public int steps;
    @Param({"64"})
    public int batch;
    @Param({"256"})
    public int width;
    DeviceBuffer y, lengths, out, idx, dout, dy;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        y = s.f32((long) steps * batch * width, -1, 1);
        lengths = s.i32(batch, 1);
        s.be.fill(lengths, 0, batch, steps);
        out = s.f32((long) batch * width, 0, 0);
        idx = s.i32((long) batch * width, 1);
        dout = s.f32((long) batch * width, -1, 1);
        dy = s.f32((long) steps * batch * width, 0, 0);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void pool_mean() {
        TrainKernels.poolFwd(s.be, TrainKernels.Pool.MEAN, steps, batch, width, y, 0, lengths, out, null);
        TrainKernels.poolBwd(s.be, TrainKernels.Pool.MEAN, steps, batch, width, lengths, null, dout, dy, 0);
        s.be.finish();
    }

    @Benchmark
    public void pool_max() {
        TrainKernels.poolFwd(s.be, TrainKernels.Pool.MAX, steps, batch, width, y, 0, lengths, out, idx);
        TrainKernels.poolBwd(s.be, TrainKernels.Pool.MAX, steps, batch, width, null, idx, dout, dy, 0);
        s.be.finish();
    }
}
