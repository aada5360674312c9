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

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The fused LSTM pointwise kernels alone ({@code lstm_step_fwd} in training mode and {@code lstm_step_bwd}),
 * one launch plus {@code finish()} per operation, on a device backend (default {@code opencl}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class LstmStepBench {
    @Param({"opencl"})
    public String backend;
    @Param({"32"})
    public int batch;
    @Param({"256"})
    public int hidden;
    @Param({"1", "2"})
    public int directions;

    static final int T = 4;
    DeviceBackend be;
    final List<DeviceBuffer> owned = new ArrayList<>();
    DeviceBuffer len, xw, hw, bih, bhh, peep, c, h, hin, y, gsave, csave, dy, dhN, dhrec, dcN, dc, c0, dgs, dgall;

    DeviceBuffer buf(long n, float v) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n);
        owned.add(b);
        be.fill(b, 0, n, v);
        return b;
    }

    @Setup(Level.Trial)
    public void setup() {
        be = (DeviceBackend) Backends.open(backend);
        int B = batch, H = hidden, D = directions, GH = 4 * H;
        len = be.allocate(DeviceBuffer.Type.I32, B);
        owned.add(len);
        int[] l = new int[B];
        Arrays.fill(l, T);
        be.upload(l, 0, len, 0, B);
        xw = buf((long) T * B * D * GH, 0.1f);
        hw = buf((long) D * B * GH, -0.2f);
        bih = buf((long) D * GH, 0.05f);
        bhh = buf((long) D * GH, 0.05f);
        peep = buf((long) D * 3 * H, 0.1f);
        c = buf((long) D * B * H, 0.3f);
        h = buf((long) D * B * H, 0.2f);
        hin = buf((long) D * B * H, 0f);
        y = buf((long) T * B * D * H, 0f);
        gsave = buf((long) T * B * D * GH, 0.5f);
        csave = buf((long) T * B * D * H, 0.4f);
        dy = buf((long) T * B * D * H, 0.01f);
        dhN = buf((long) D * B * H, 0.02f);
        dhrec = buf((long) D * B * H, 0.03f);
        dcN = buf((long) D * B * H, 0.01f);
        dc = buf((long) D * B * H, 0.01f);
        c0 = buf((long) D * B * H, 0.1f);
        dgs = buf((long) D * B * GH, 0f);
        dgall = buf((long) T * B * D * GH, 0f);
        be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (DeviceBuffer b : owned) b.close();
        be.close();
    }

    @Benchmark
    public void lstm_step_fwd() {
        int B = batch, H = hidden, D = directions;
        be.launch(Kernels.LSTM_STEP_FWD, new long[] {H, B, D}, 1, T, B, H, D, H, 0, 0, 0, 1, len, xw, hw, bih, bhh, peep,
                c, h, hin, y, gsave, csave, peep, peep, 1, 2, 0, 0, 1f);
        be.finish();
    }

    @Benchmark
    public void lstm_step_bwd() {
        int B = batch, H = hidden, D = directions;
        be.launch(Kernels.LSTM_STEP_BWD, new long[] {H, B, D}, 1, T, B, H, D, H, 0, 0, 0, len, dy, dhN, dhrec, peep, dcN,
                dc, gsave, csave, c0, peep, dgs, dgall, 1, 2, 0, 0, 1f);
        be.finish();
    }
}
