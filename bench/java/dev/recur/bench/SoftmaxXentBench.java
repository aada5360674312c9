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
 * {@code softmax_xent_fwd_bwd} then {@code softmax_xent_mean} over {@code N x V} logits (one row in 8 padded), plus
 * {@code finish()}: at least 8 bytes per logit (the logits read, dlogits written).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class SoftmaxXentBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"512"})
    public int rows;
    @Param({"10000"})
    public int vocab;
    DeviceBuffer logits, targets, loss, dlogits, mean;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        logits = s.f32((long) rows * vocab, -4, 4);
        // Targets 0..7 with id 0 as padding: one row in 8 does not count.
        targets = s.i32(rows, 8);
        loss = s.f32(rows, 0, 0);
        dlogits = s.f32((long) rows * vocab, 0, 0);
        mean = s.f32(1, 0, 0);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void softmax_xent_fwd_bwd() {
        TrainKernels.softmaxXentFwdBwd(s.be, rows, vocab, 0, logits, targets, loss, dlogits);
        TrainKernels.softmaxXentMean(s.be, rows, 0, targets, loss, mean);
        s.be.finish();
    }
}
