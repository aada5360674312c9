package dev.recur.bench;

import dev.recur.backend.cpu.CpuGemm;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * {@link CpuGemm} at the shapes of an LSTM layer with T=50, B=32, I=H=256 (G*H = 1024), as the shared schedule
 * calls it. The score is GFLOP/s: each benchmark declares its FLOP count / 1000 as operations per invocation
 * and reports operations per microsecond.
 * <ul>
 *   <li>{@code input}: the input projection of all steps, {@code X[T*B, I] * W_ihᵀ}: M=1600, N=1024, K=256 (NT)</li>
 *   <li>{@code step}: one step's recurrent projection {@code h[B, H] * W_hhᵀ}: M=32, N=1024, K=256 (NT), read in place</li>
 *   <li>{@code stepPrepacked}: the same with W_hh packed once, as the cpu backend runs it at every step</li>
 *   <li>{@code stepBackward}: one backward step's {@code dG[B, 4H] * W_hh}: M=32, N=256, K=1024 (NN)</li>
 *   <li>{@code weightGradient}: {@code dW_hh = dGᵀ * Hprev}: M=1024, N=256, K=1600 (TN)</li>
 * </ul>
 * Run: {@code java -jar target/benchmarks.jar CpuGemmBench -p threads=1,2}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 4, time = 1)
@Measurement(iterations = 5, time = 1)
public class CpuGemmBench {
    @Param({"1", "2"})
    public int threads;

    private Arena arena;
    private CpuGemm gemm;
    private MemorySegment x, w, out, h, g, hprev;
    private CpuGemm.PackedB[] whh;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        gemm = new CpuGemm(threads);
        SplittableRandom r = new SplittableRandom(42);
        x = random(1600L * 256, r);      // [T*B, I]
        w = random(1024L * 256, r);      // [4H, H] (W_ih or W_hh)
        out = random(1600L * 1024, r);   // [T*B, 4H]
        h = random(32L * 256, r);        // [B, H]
        g = random(1600L * 1024, r);     // [T*B, 4H] gate gradients
        hprev = random(1600L * 256, r);  // [T*B, H]
        whh = new CpuGemm.PackedB[] {gemm.pack(true, 256, 1024, w, 0, 256)};
    }

    private MemorySegment random(long n, SplittableRandom r) {
        MemorySegment s = arena.allocate(n * Float.BYTES, 64);
        for (long i = 0; i < n; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextDouble(-1, 1));
        return s;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        gemm.close();
        arena.close();
    }

    @Benchmark
    @OperationsPerInvocation(838_861) // 2*1600*1024*256 / 1000
    public void input() {
        gemm.gemm(false, true, 1600, 1024, 256, 1f, x, 0, 256, w, 0, 256, 0f, out, 0, 1024);
    }

    @Benchmark
    @OperationsPerInvocation(16_777) // 2*32*1024*256 / 1000
    public void step() {
        gemm.gemm(false, true, 32, 1024, 256, 1f, h, 0, 256, w, 0, 256, 0f, out, 0, 1024);
    }

    @Benchmark
    @OperationsPerInvocation(16_777) // 2*32*1024*256 / 1000
    public void stepPrepacked() {
        gemm.gemmPrepacked(false, 32, 1f, h, 0, 256, 0, whh, 0f, out, 0, 1024, 0);
    }

    @Benchmark
    @OperationsPerInvocation(16_777) // 2*32*256*1024 / 1000
    public void stepBackward() {
        gemm.gemm(false, false, 32, 256, 1024, 1f, g, 0, 1024, w, 0, 256, 0f, out, 0, 256);
    }

    @Benchmark
    @OperationsPerInvocation(838_861) // 2*1024*256*1600 / 1000
    public void weightGradient() {
        gemm.gemm(true, false, 1024, 256, 1600, 1f, g, 0, 1024, hprev, 0, 256, 0f, out, 0, 256);
    }
}
