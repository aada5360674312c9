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
 * {@code embedding_fwd} and the gradient ({@code embedding_bwd_index} + {@code embedding_bwd}, beta = 0) for
 * {@code N} positions over a {@code V x E} table, plus {@code finish()}. The backward writes the whole table
 * (V*E*4 bytes) and reads dout once (N*E*4).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class EmbeddingBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"2048"})
    public int positions;
    @Param({"10000"})
    public int vocab;
    @Param({"256"})
    public int dim;
    DeviceBuffer ids, weight, out, dout, dweight, start, order;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        ids = s.i32(positions, vocab);
        weight = s.f32((long) vocab * dim, -1, 1);
        out = s.f32((long) positions * dim, 0, 0);
        dout = s.f32((long) positions * dim, -1, 1);
        dweight = s.f32((long) vocab * dim, 0, 0);
        start = s.i32(vocab + 1, 1);
        order = s.i32(positions, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void embedding_fwd() {
        TrainKernels.embeddingFwd(s.be, positions, dim, vocab, ids, weight, out);
        s.be.finish();
    }

    @Benchmark
    public void embedding_bwd() {
        TrainKernels.embeddingBwd(s.be, positions, dim, vocab, 0, ids, dout, start, order, dweight, 0f);
        s.be.finish();
    }
}
