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
 * {@code scheduled_feed} over one decoder step's rows (a training batch of 64, and 4096 rows to see the per-row
 * cost), plus {@code finish()}: one counter-based coin and 12 bytes per row; in a scheduled-sampling step it follows
 * {@code argmax_rows} (see {@link ArgmaxRowsBench}) once per target step.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class ScheduledFeedBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"64", "4096"})
    public int rows;
    DeviceBuffer target, pred, next;
    TrainBenchSupport s;
    int step;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        target = s.i32(rows, 1000);
        pred = s.i32(rows, 1000);
        next = s.i32(rows, 1);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void scheduled_feed() {
        // A fresh step each call, as in training (the coins are keyed by it).
        step = (step + 1) & 0xFFFF;
        TrainKernels.scheduledFeed(s.be, rows, 0.5, 42, step, target, 0, pred, next, 0);
        s.be.finish();
    }
}
