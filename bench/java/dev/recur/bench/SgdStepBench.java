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
 * {@code sgd_step} with Nesterov momentum and weight decay over {@code n} parameters, one launch plus {@code finish()}:
 * 20 bytes per parameter (p, g, buf read; p, buf written).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class SgdStepBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"1048576"})
    public int n;
    DeviceBuffer p, g, buf, scale;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        p = s.f32(n, -1, 1);
        g = s.f32(n, -1, 1);
        buf = s.f32(n, -0.1, 0.1);
        scale = s.f32(1, 1, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void sgd_step() {
        TrainKernels.sgdStep(s.be, p, g, buf, scale, 0, n, false, 1e-3f, 0.9f, 0f, 1e-4f, true);
        s.be.finish();
    }
}
