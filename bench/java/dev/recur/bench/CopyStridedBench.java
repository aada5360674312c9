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
 * {@code copy_strided} of an {@code N x F/2} block into the right half of an {@code N x F} matrix (a concatenation),
 * plus {@code finish()}: 8 bytes per element copied.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class CopyStridedBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"2048"})
    public int rows;
    @Param({"1024"})
    public int features;
    DeviceBuffer y, half;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        y = s.f32((long) rows * features, 0, 0);
        half = s.f32((long) rows * (features / 2), -1, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void copy_strided() {
        TrainKernels.copyStrided(s.be, rows, features / 2, half, 0, features / 2, y, features / 2, features);
        s.be.finish();
    }
}
