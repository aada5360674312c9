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
 * {@code beam_backtrace} after 12 steps (the demo's maximum length) over {@code items*width} rows, plus
 * {@code finish()}: each item walks its {@code width} rows back (8 bytes per row and step) and writes its answer.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class BeamBacktraceBench {
    @Param({"cpu", "opencl"})
    public String backend;
    /** items x width x vocabulary: the date demo's held-out decoding at width 4, and a word-level beam. */
    @Param({"1000x4x16", "8x8x10000"})
    public String shape;
    int items, width, vocab, n;
    DeviceBuffer score, histTok, histPar, out, at, scores;
    TrainBenchSupport s;
    static final int STEPS = 12;

    @Setup(Level.Trial)
    public void setup() {
        String[] d = shape.split("x");
        items = Integer.parseInt(d[0]);
        width = Integer.parseInt(d[1]);
        vocab = Integer.parseInt(d[2]);
        n = items * width;
        s = new TrainBenchSupport(backend);
        score = s.f32(n, -10, 0);
        histTok = s.i32((long) STEPS * n, vocab);
        histPar = s.i32((long) STEPS * n, n);
        out = s.i32((long) items * STEPS, 1);
        at = s.i32((long) items * STEPS, 1);
        scores = s.f32(2L * items, 0, 0);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void beam_backtrace() {
        TrainKernels.beamBacktrace(s.be, items, width, STEPS, 2, 0.6f, score, histTok, histPar, out, at, scores);
        s.be.finish();
    }
}
