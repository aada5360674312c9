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
 * {@code sample_rows} over {@code N x V} logits (one sampling step of 64 sequences at T = 0.8), plus {@code finish()}:
 * three passes over each row (max, exponentials summed, the cumulative search), with and without the log-probability
 * (a fourth pass at T != 1).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class SampleRowsBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"64"})
    public int rows;
    @Param({"10000"})
    public int vocab;
    @Param({"false", "true"})
    public boolean logp;
    DeviceBuffer x, idx, lp;
    TrainBenchSupport s;
    int step;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        x = s.f32((long) rows * vocab, -4, 4);
        idx = s.i32(rows, 1);
        lp = s.f32(rows, 0, 0);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void sample_rows() {
        TrainKernels.sampleRows(s.be, rows, vocab, 0.8f, 42, step++ & 0xFFFF, x, idx, logp ? lp : null);
        s.be.finish();
    }
}
