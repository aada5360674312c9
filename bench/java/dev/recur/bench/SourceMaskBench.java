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
 * {@code source_mask} over the demo's held-out decoding batch (1000 sources, the longest 27 characters): {@code steps x
 * batch} ids uniform in [0, 4), 0 the padding id, plus {@code finish()}: 4 bytes read per id, 4 written per mask entry
 * and per length.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class SourceMaskBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"1000"})
    public int batch;
    @Param({"27"})
    public int steps;
    DeviceBuffer ids, lengths, mask;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        ids = s.i32((long) steps * batch, 4);
        lengths = s.i32(batch, 1);
        mask = s.i32((long) batch * steps, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void source_mask() {
        TrainKernels.sourceMask(s.be, steps, batch, 0, ids, lengths, mask);
        s.be.finish();
    }
}
