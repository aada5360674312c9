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
 * {@code adam_step} (AdamW) over a flat buffer of {@code n} parameters, one launch plus {@code finish()}: 28 bytes
 * per parameter (p, g, m, v read; p, m, v written).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class AdamStepBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"1048576"})
    public int n;
    DeviceBuffer p, g, m, v, scale;
    int step;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        p = s.f32(n, -1, 1);
        g = s.f32(n, -1, 1);
        m = s.f32(n, -0.1, 0.1);
        v = s.f32(n, 0, 0.01);
        scale = s.f32(1, 1, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void adam_step() {
        // The step count cycles so the bias corrections stay in their usual range during a long run.
        step = step % 1000 + 1;
        TrainKernels.adamStep(s.be, p, g, m, v, scale, 0, n, step, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, true);
        s.be.finish();
    }
}
