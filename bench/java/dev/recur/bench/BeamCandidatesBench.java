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
 * {@code beam_candidates} over {@code items*width} rows of {@code vocab} logits (a log-softmax per row plus the row's
 * score), plus {@code finish()}: 12 bytes per logit (the logits read twice, the candidate written).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class BeamCandidatesBench {
    @Param({"cpu", "opencl"})
    public String backend;
    /** items x width x vocabulary: the date demo's held-out decoding at width 4, and a word-level beam. */
    @Param({"1000x4x16", "8x8x10000"})
    public String shape;
    int items, width, vocab, n;
    DeviceBuffer logits, tok, score, cand;
    TrainBenchSupport s;

    @Setup(Level.Trial)
    public void setup() {
        String[] d = shape.split("x");
        items = Integer.parseInt(d[0]);
        width = Integer.parseInt(d[1]);
        vocab = Integer.parseInt(d[2]);
        n = items * width;
        s = new TrainBenchSupport(backend);
        logits = s.f32((long) n * vocab, -4, 4);
        tok = s.i32(n, vocab);
        score = s.f32(n, -10, 0);
        cand = s.f32((long) n * vocab, 0, 0);
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        s.close();
    }

    @Benchmark
    public void beam_candidates() {
        TrainKernels.beamCandidates(s.be, items, width, vocab, 1, 2, logits, tok, score, cand);
        s.be.finish();
    }
}
