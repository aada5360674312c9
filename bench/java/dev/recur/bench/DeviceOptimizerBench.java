package dev.recur.bench;

import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.train.DeviceOptimizer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.nn.train.ParamRule;
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
 * {@link DeviceOptimizer#step()} (AdamW, clipped at 1) over a two-layer LSTM weight space of 256 inputs and 256 hidden
 * units, 1,052,672 parameters in one buffer, plus {@code finish()}. {@code groups}:
 * <ul>
 *   <li>{@code uniform}: one group: 3 launches (partial norms, the scale, one {@code adam_step});</li>
 *   <li>{@code torch}: PyTorch's no-decay grouping, each layer's [weight_ih weight_hh] and [bias_ih bias_hh]: 6 launches;</li>
 *   <li>{@code frozen}: as {@code torch} with layer 0 frozen: 4 launches over layer 1's 526,336 parameters.</li>
 * </ul>
 * Adam reads p, g, m, v and writes p, m, v: 28 bytes per updated parameter, plus 4 per counted gradient for the norm.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class DeviceOptimizerBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"uniform", "torch", "frozen"})
    public String groups;
    TrainBenchSupport s;
    WeightSpace p, g;
    DeviceOptimizer opt;

    @Setup(Level.Trial)
    public void setup() {
        s = new TrainBenchSupport(backend);
        RnnConfig rnn = RnnConfig.builder(CellType.LSTM, 256, 256).layers(2).build();
        p = WeightSpace.allocate(s.be, rnn);
        g = WeightSpace.allocate(s.be, rnn);
        int n = (int) p.flat().size();
        SplittableRandom r = new SplittableRandom(42);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextDouble(-0.1, 0.1);
        s.be.upload(v, 0, p.flat().buffer(), 0, n);
        for (int i = 0; i < n; i++) v[i] = (float) r.nextDouble(-1, 1);
        s.be.upload(v, 0, g.flat().buffer(), 0, n);
        OptimizerConfig.Builder c = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 1e-3).weightDecay(0.01).clipNorm(1.0);
        if (!groups.equals("uniform")) c.noDecay(ParamRule.torchNoDecay());
        if (groups.equals("frozen")) c.frozen(ParamRule.regex("rnn\\..*_l0"));
        opt = new DeviceOptimizer(s.be, c.build()).addSpace("rnn", p, g);
        opt.prepare();
        System.out.printf("%n%s %s: %d parameters, %d launches per step%n", backend, groups, n, opt.launchesPerStep());
        s.be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        opt.close();
        p.close();
        g.close();
        s.close();
    }

    @Benchmark
    public void step() {
        opt.step();
        s.be.finish();
    }
}
