package dev.recur.bench;

import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
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
 * The {@code transpose} kernel alone, one launch plus {@code finish()} per operation, in its three uses: the
 * transposed weight copy of an LSTM's {@code W_hh} ({@code [4H, H]} into {@code [H, 4H]}, made on the device whenever the
 * weights change), the batch-first swap of an input {@code [B, T, I]}, and the accumulation of a weight gradient into
 * a gradient space ({@code GradMode.ADD}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class TransposeBench {
    @Param({"cpu", "opencl"})
    public String backend;
    @Param({"256"})
    public int hidden;

    static final int T = 50, B = 32;
    DeviceBackend be;
    DeviceBuffer src, dst;

    @Setup(Level.Trial)
    public void setup() {
        be = (DeviceBackend) Backends.open(backend);
        long n = Math.max(4L * hidden * hidden, (long) T * B * hidden);
        src = be.allocate(DeviceBuffer.Type.F32, n);
        dst = be.allocate(DeviceBuffer.Type.F32, n);
        be.fill(src, 0, n, 0.5);
        be.fill(dst, 0, n, 0.25);
        be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        src.close();
        dst.close();
        be.close();
    }

    @Benchmark
    public void transpose_weight() {
        int rows = 4 * hidden, cols = hidden;
        be.launch(Kernels.TRANSPOSE, new long[] {cols, rows}, rows, cols, 1, src, 0, cols, dst, 0, rows, 0f);
        be.finish();
    }

    @Benchmark
    public void transpose_batch_first() {
        be.launch(Kernels.TRANSPOSE, new long[] {(long) hidden * T, B}, B, T, hidden, src, 0, T, dst, 0, B, 0f);
        be.finish();
    }

    @Benchmark
    public void transpose_grad_add() {
        int n = 4 * hidden * hidden;
        be.launch(Kernels.TRANSPOSE, new long[] {n, 1}, 1, 1, n, src, 0, 1, dst, 0, 1, 1f);
        be.finish();
    }
}
