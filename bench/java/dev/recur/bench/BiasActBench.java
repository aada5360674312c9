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
 * {@code bias_act_fwd} (tanh) and {@code bias_act_bwd} over {@code N x F}, plus {@code finish()}: 8 and 12 bytes per
 * element.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class BiasActBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"2048"})
    public int rows;
    @Param({"1024"})
    public int features;
    DeviceBuffer x, bias, y, dy, dx;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        x = s.f32((long) rows * features, -2, 2);
        bias = s.f32(features, -1, 1);
        y = s.f32((long) rows * features, 0, 0);
        dy = s.f32((long) rows * features, -1, 1);
        dx = s.f32((long) rows * features, 0, 0);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void bias_act_fwd() {
        TrainKernels.biasActFwd(s.be, rows, features, TrainKernels.Act.TANH, x, bias, y);
        s.be.finish();
    }

    @Benchmark
    public void bias_act_bwd() {
        TrainKernels.biasActBwd(s.be, rows, features, TrainKernels.Act.TANH, y, dy, dx);
        s.be.finish();
    }
}
