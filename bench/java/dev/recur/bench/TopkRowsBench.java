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
 * {@code topk_rows} (K = 8) over {@code N x V} scores, a beam search step at batch 8 x beam 8, plus {@code finish()}:
 * 4 bytes read per score.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class TopkRowsBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"64"})
    public int rows;
    @Param({"10000"})
    public int vocab;
    DeviceBuffer x, vals, idx;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        x = s.f32((long) rows * vocab, -4, 4);
        vals = s.f32(rows * 8L, 0, 0);
        idx = s.i32(rows * 8L, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void topk_rows() {
        TrainKernels.topkRows(s.be, rows, vocab, 8, x, vals, idx);
        s.be.finish();
    }
}
