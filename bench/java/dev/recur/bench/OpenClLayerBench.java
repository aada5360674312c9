package dev.recur.bench;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
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
 * A whole layer through the shared schedule on a device backend (default {@code opencl}): forward
 * (inference) and forward+backward (training), at the reference workload T=50, B=32, I=H=256.
 *
 * <p>PoCL, 2-core EPYC shared with other jobs (load 3-7), {@code -wi 1 -i 4 -r 2}, ms/op, before (e49346f) /
 * after the float8 step kernels and the rational tanh, run back to back: LSTM fwd 93.6 / 47.9 (52.2 in a second
 * run), fwd_bwd 223 / 182 (177); GRU fwd 49.3 / 32.8 (31.6), fwd_bwd 178 / 123 (126); RNN-tanh fwd 23.8 / 13.2
 * (12.2), fwd_bwd 63.6 / 53.4 (47.0). PyTorch with default OpenBLAS on a quiet machine of this kind: LSTM 53 / 169,
 * GRU 39 / 134, RNN-tanh fwd 14.6. What remained then was GEMM, at about 30 GFLOP/s per core.
 *
 * <p>After the 6 x 16 staged GEMM, the float8 col_sum / gather_hprev / GRU and RNN backward steps (branch clperf2,
 * measured with {@code ./recur bench ... --repeats 30 --warmup 30}, median / min ms, base 1ff4a85 and new run
 * alternately, load 1.3-1.7): LSTM fwd 33.5 / 26.8 -> 26.0 / 18.7, fwd_bwd 119 / 96 -> 83 / 62; GRU fwd 21.4 / 19.1
 * -> 19.1 / 17.8, fwd_bwd 87 / 71 -> 66 / 50; RNN-tanh fwd 9.3 / 6.4 -> 9.6 / 7.1 (unchanged: per-step launches),
 * fwd_bwd 36.6 / 25.4 -> 26.2 / 18.6. Big GEMMs now run at 105-125 GFLOP/s on the two cores, the per-step ones
 * at 70-90.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class OpenClLayerBench {
    @Param({"opencl"})
    public String backend;
    @Param({"lstm", "gru", "rnn_tanh"})
    public String cell;
    @Param({"50"})
    public int steps;
    @Param({"32"})
    public int batch;
    @Param({"256"})
    public int hidden;

    Backend be;
    Rnn rnn;
    Tensor x, dy;

    @Setup(Level.Trial)
    public void setup() {
        be = Backends.open(backend);
        RnnConfig cfg = RnnConfig.builder(CellType.parse(cell), hidden, hidden).build();
        rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 1));
        SplittableRandom r = new SplittableRandom(2);
        x = Tensor.zeros(steps, batch, hidden);
        dy = Tensor.zeros(steps, batch, hidden);
        for (int i = 0; i < x.size(); i++) {
            x.data()[i] = r.nextDouble(-1, 1);
            dy.data()[i] = r.nextDouble(-1, 1);
        }
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

    @Benchmark
    public RnnGradients layer_fwd_bwd() {
        try (RnnOutput out = rnn.forwardTraining(RnnInput.of(x), 3)) {
            return rnn.backward(out, dy, null, null);
        }
    }
}
