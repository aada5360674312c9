package dev.recur.bench;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The latency case of issue 3 (LSTM T=20, I=H, small batches, inference) with the persistent single-work-group
 * layer forced on and off ({@code recur.persistent=always|never}): the data behind
 * {@code ScheduledRnn.PERSIST_MAX_ROWS} / {@code PERSIST_MAX_MACS}. Run e.g.
 * {@code java -jar target/benchmarks.jar OpenClLatencyBench -p batch=1,8 -p hidden=128}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class OpenClLatencyBench {
    @Param({"always", "never"})
    public String persistent;
    @Param({"lstm"})
    public String cell;
    @Param({"20"})
    public int steps;
    @Param({"1", "4", "8", "16"})
    public int batch;
    @Param({"128", "256"})
    public int hidden;

    Backend be;
    Rnn rnn;
    Tensor x;

    @Setup(Level.Trial)
    public void setup() {
        // Read by ScheduledRnn when the network is created.
        System.setProperty("recur.persistent", persistent);
        be = Backends.open("opencl");
        RnnConfig cfg = RnnConfig.builder(CellType.parse(cell), hidden, hidden).build();
        rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 1));
        SplittableRandom r = new SplittableRandom(2);
        x = Tensor.zeros(steps, batch, hidden);
        for (int i = 0; i < x.size(); i++) x.data()[i] = r.nextDouble(-1, 1);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        rnn.close();
        be.close();
    }

    @Benchmark
    public Tensor layer_fwd() {
        try (RnnOutput out = rnn.forward(RnnInput.of(x))) {
            return out.y();
        }
    }
}
