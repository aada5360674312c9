package dev.recur.bench;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionWeights;
import dev.recur.schedule.AttentionSchedule;
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
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Attention forward and forward+backward on a device backend, with every tensor kept on the device (the
 * device-level API of {@link AttentionSchedule}, as a seq2seq decoder would call it), so the figures are the
 * GEMMs and kernels without host transfers. Default shape U=50, B=32, T=100, H=256 (A=128 for additive),
 * the PyTorch comparison point in the toolchain notes; a quarter of the encoder positions of half the
 * sequences are masked.
 *
 * <pre>
 * mvn -B -ntp -Pbench package -DskipTests
 * java -jar target/benchmarks.jar AttentionBench -p backend=opencl -p score=DOT,GENERAL,ADDITIVE
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow"})
public class AttentionBench {
    @Param({"opencl"})
    public String backend;

    @Param({"DOT", "SCALED", "GENERAL", "ADDITIVE"})
    public AttentionScore score;

    @Param({"50"})
    public int u;

    @Param({"32"})
    public int b;

    @Param({"100"})
    public int t;

    @Param({"256"})
    public int hidden;

    @Param({"128"})
    public int attentionSize;

    private Backend opened;
    private DeviceBackend be;
    private AttentionSchedule att;
    private final List<DeviceBuffer> buffers = new ArrayList<>();
    private DeviceBuffer dec, enc, mask, scores, weights, context, dcontext, dscores, ddec, denc;

    @Setup(Level.Trial)
    public void setUp() {
        opened = Backends.open(backend);
        if (!(opened instanceof DeviceBackend db)) {
            opened.close();
            throw new IllegalArgumentException("backend: expected a device backend, got " + backend);
        }
        be = db;
        AttentionConfig cfg = new AttentionConfig(score, hidden, hidden, score == AttentionScore.ADDITIVE ? attentionSize : 0);
        att = new AttentionSchedule(be, cfg);
        att.setWeights(AttentionWeights.init(cfg, 1));
        SplittableRandom rnd = new SplittableRandom(2);
        dec = random(rnd, (long) u * b * hidden);
        enc = random(rnd, (long) t * b * hidden);
        dcontext = random(rnd, (long) u * b * hidden);
        int[] m = new int[b * t];
        for (int i = 0; i < b; i++) for (int j = 0; j < t; j++) m[i * t + j] = (i % 2 == 1 && j >= t * 3 / 4) ? 0 : 1;
        mask = alloc(DeviceBuffer.Type.I32, m.length);
        be.upload(m, 0, mask, 0, m.length);
        scores = alloc(DeviceBuffer.Type.F32, (long) u * b * t);
        weights = alloc(DeviceBuffer.Type.F32, (long) u * b * t);
        dscores = alloc(DeviceBuffer.Type.F32, (long) u * b * t);
        context = alloc(DeviceBuffer.Type.F32, (long) u * b * hidden);
        ddec = alloc(DeviceBuffer.Type.F32, (long) u * b * hidden);
        denc = alloc(DeviceBuffer.Type.F32, (long) t * b * hidden);
        // Compile and size the scratch once, outside the measurement.
        forwardBackward();
    }

    private DeviceBuffer alloc(DeviceBuffer.Type type, long n) {
        DeviceBuffer d = be.allocate(type, n);
        buffers.add(d);
        return d;
    }

    private DeviceBuffer random(SplittableRandom rnd, long n) {
        float[] f = new float[Math.toIntExact(n)];
        for (int i = 0; i < f.length; i++) f[i] = (float) rnd.nextDouble(-1, 1);
        DeviceBuffer d = alloc(DeviceBuffer.Type.F32, n);
        be.upload(f, 0, d, 0, f.length);
        return d;
    }

    @Benchmark
    public void forward() {
        att.forward(u, b, t, dec, enc, mask, scores, weights, context);
        be.finish();
    }

    @Benchmark
    public void forwardBackward() {
        att.forward(u, b, t, dec, enc, mask, scores, weights, context);
        att.backward(u, b, t, dec, enc, mask, weights, dcontext, dscores, ddec, denc);
        be.finish();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (DeviceBuffer d : buffers) d.close();
        buffers.clear();
        if (att != null) att.close();
        if (opened != null) opened.close();
    }
}
