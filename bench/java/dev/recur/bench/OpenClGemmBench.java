package dev.recur.bench;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.opencl.OpenClBackend;
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
 * OpenCL SGEMM: the hand-written register-blocked kernel against CLBlast at the schedule's shapes
 * ({@code m x n x k}, row-major, op codes NN / NT / TN). GFLOP/s = 2*m*n*k / time. The first CLBlast call
 * compiles its kernels (tens of seconds on PoCL), paid in the setup.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class OpenClGemmBench {
    @Param({"hand", "clblast"})
    public String gemm;
    /** m x n x k and op: input projection, per-step recurrent forward and backward, dx, dW. */
    @Param({"1600x1024x256:NN", "32x1024x256:NN", "32x256x1024:NN", "1600x1024x256:NT", "1600x256x1024:NN",
            "1024x256x1600:TN"})
    public String shape;

    OpenClBackend be;
    DeviceBuffer a, b, c;
    int m, n, k;
    boolean ta, tb;

    @Setup(Level.Trial)
    public void setup() {
        String[] p = shape.split("[x:]");
        m = Integer.parseInt(p[0]);
        n = Integer.parseInt(p[1]);
        k = Integer.parseInt(p[2]);
        ta = p[3].charAt(0) == 'T';
        tb = p[3].charAt(1) == 'T';
        be = OpenClBackend.open(gemm);
        a = be.allocate(DeviceBuffer.Type.F32, (long) m * k);
        b = be.allocate(DeviceBuffer.Type.F32, (long) k * n);
        c = be.allocate(DeviceBuffer.Type.F32, (long) m * n);
        be.fill(a, 0, a.size(), 0.5);
        be.fill(b, 0, b.size(), 0.25);
        run();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        a.close();
        b.close();
        c.close();
        be.close();
    }

    @Benchmark
    public void run() {
        DeviceBackend d = be;
        d.gemm(ta, tb, m, n, k, 1f, a, 0, ta ? m : k, b, 0, tb ? k : n, 0f, c, 0, n);
        d.finish();
    }
}
