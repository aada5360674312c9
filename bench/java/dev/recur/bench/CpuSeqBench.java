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
 * The cpu backend's whole-sequence kernels, one layer of T steps per operation: the LSTM's ({@code lstm_seq_fwd}
 * in training mode, {@code lstm_seq_bwd}) against the per-step path they replace (per step: the recurrent GEMM,
 * then {@code lstm_step_fwd}; backward {@code lstm_step_bwd}, then the GEMM dh = dgates W_hh), and the GRU's and
 * RNN-tanh's ({@code gru_seq_fwd}/{@code gru_seq_bwd}, {@code rnn_seq_fwd}/{@code rnn_seq_bwd}) on the same
 * shapes. The buffers are sized for the LSTM's four gates; the GRU (three) and the RNN (one) use their fronts.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class CpuSeqBench {
    @Param({"32"})
    public int batch;
    @Param({"256"})
    public int hidden;
    @Param({"50"})
    public int steps;

    DeviceBackend be;
    final List<DeviceBuffer> owned = new ArrayList<>();
    DeviceBuffer len, xw, whhT, whh, hw, bih, bhh, peep, c, h, hin, y, gsave, csave, dy, dhN, dhrec, dcN, dc, c0, dgs, dgall, dgallh, ddir;

    DeviceBuffer buf(long n, float v) {
        DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n);
        owned.add(b);
        be.fill(b, 0, n, v);
        return b;
    }

    @Setup(Level.Trial)
    public void setup() {
        be = (DeviceBackend) Backends.open("cpu");
        int T = steps, B = batch, H = hidden, GH = 4 * H;
        len = be.allocate(DeviceBuffer.Type.I32, B);
        owned.add(len);
        int[] l = new int[B];
        Arrays.fill(l, T);
        be.upload(l, 0, len, 0, B);
        xw = buf((long) T * B * GH, 0.1f);
        whhT = buf((long) H * GH, 0.01f);
        whh = buf((long) GH * H, 0.01f);
        hw = buf((long) B * GH, 0f);
        bih = buf(GH, 0.05f);
        bhh = buf(GH, 0.05f);
        peep = buf(3L * H, 0f);
        c = buf((long) B * H, 0.3f);
        h = buf((long) B * H, 0.2f);
        hin = buf((long) B * H, 0f);
        y = buf((long) T * B * H, 0f);
        gsave = buf((long) T * B * GH, 0.5f);
        csave = buf((long) T * B * H, 0.4f);
        dy = buf((long) T * B * H, 0.01f);
        dhN = buf((long) B * H, 0.02f);
        dhrec = buf((long) B * H, 0f);
        dcN = buf((long) B * H, 0.01f);
        dc = buf((long) B * H, 0f);
        c0 = buf((long) B * H, 0.1f);
        dgs = buf((long) B * GH, 0f);
        dgall = buf((long) T * B * GH, 0f);
        dgallh = buf((long) T * B * GH, 0f);
        ddir = buf((long) B * H, 0f);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (DeviceBuffer b : owned) b.close();
        be.close();
    }

    @Benchmark
    public void seqForward() {
        be.launch(Kernels.LSTM_SEQ_FWD, new long[] {1}, steps, batch, hidden, 1, 0, 0, 1, len, xw, whhT, hw, bih, bhh,
                peep, c, h, hin, y, gsave, csave, 0, 0, 0, 0, 1f);
        be.finish();
    }

    @Benchmark
    public void perStepForward() {
        int B = batch, H = hidden, GH = 4 * H;
        for (int s = 0; s < steps; s++) {
            be.gemm(false, false, B, GH, H, 1f, h, 0, H, whhT, 0, GH, 0f, hw, 0, GH);
            be.launch(Kernels.LSTM_STEP_FWD, new long[] {H, B, 1}, s, steps, B, H, 1, H, 0, 0, 0, 1, len, xw, hw, bih,
                    bhh, peep, c, h, hin, y, gsave, csave, csave, csave, 0, 0, 0, 0, 1f);
        }
        be.finish();
    }

    @Benchmark
    public void seqBackward() {
        be.launch(Kernels.LSTM_SEQ_BWD, new long[] {1}, steps, batch, hidden, 1, 0, 0, len, dy, dhN, dhrec, dcN, dc,
                gsave, csave, c0, peep, whh, dgs, dgall, 0, 0, 0, 0, 1f);
        be.finish();
    }

    @Benchmark
    public void perStepBackward() {
        int B = batch, H = hidden, GH = 4 * H;
        for (int s = steps - 1; s >= 0; s--) {
            be.launch(Kernels.LSTM_STEP_BWD, new long[] {H, B, 1}, s, steps, B, H, 1, H, 0, 0, 0, len, dy, dhN, dhrec,
                    dc, dcN, dc, gsave, csave, c0, peep, dgs, dgall, 0, 0, 0, 0, 1f);
            be.gemm(false, false, B, H, GH, 1f, dgs, 0, GH, whh, 0, H, 0f, dhrec, 0, H);
        }
        be.finish();
    }

    @Benchmark
    public void gruSeqForward() {
        be.launch(Kernels.GRU_SEQ_FWD, new long[] {1}, steps, batch, hidden, 1, 1, len, xw, whhT, hw, bih, bhh, h, hin, y,
                gsave, 0, 0, 0, 0, 1f);
        be.finish();
    }

    @Benchmark
    public void gruSeqBackward() {
        be.launch(Kernels.GRU_SEQ_BWD, new long[] {1}, steps, batch, hidden, 1, len, dy, dhN, dhrec, ddir, gsave, y, c0,
                whh, dgs, dgall, dgallh, 0, 0, 0, 0, 1f);
        be.finish();
    }

    @Benchmark
    public void rnnSeqForward() {
        be.launch(Kernels.RNN_SEQ_FWD, new long[] {1}, steps, batch, hidden, 1, 0, len, xw, whhT, hw, bih, bhh, h, y);
        be.finish();
    }

    @Benchmark
    public void rnnSeqBackward() {
        be.launch(Kernels.RNN_SEQ_BWD, new long[] {1}, steps, batch, hidden, 1, 0, len, dy, dhN, dhrec, y, whh, dgs, dgall);
        be.finish();
    }
}
