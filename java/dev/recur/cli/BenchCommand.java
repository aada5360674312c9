package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.nn.attention.Attention;
import dev.recur.tensor.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code recur bench}: times whole networks (forward, or forward + backward) on one or more backends and
 * reports milliseconds and GEMM throughput, as a table or one JSON line per workload for scripts.
 *
 * <p>FLOPs count the GEMMs only: per layer and direction {@code 2*T*B*G*H*in} for the input projection
 * and {@code 2*T*B*G*H*Hout} for the recurrent one; forward + backward counts three times the forward
 * (the backward has two products of the same size per forward product: the data and the weight gradient).
 * Times are those of the {@link Rnn} API calls, so on a device backend they include copying the inputs up
 * and the results back to host tensors; with {@code --device-tensors} an RNN workload runs on device tensors instead
 * (no copies inside the timed call, one {@code finish()} at its end). Every JSON line carries the host-device
 * traffic per timed call from the backend's counters ({@link Traffic}).
 *
 * <p>Attention workloads ({@code attn_dot}, {@code attn_scaled}, {@code attn_general}, {@code attn_additive}) score
 * {@code --dec-len} decoder states against {@code --seq-len} encoder states of width {@code --hidden-size}
 * (attention size A = H for additive), with encoder lengths falling linearly from T to T/2 across the batch.
 * Their FLOPs are the score and context products: {@code 2*U*B*T*H} each, plus {@code 2*U*B*H*H} for general's
 * {@code dec W_a}, and for additive {@code 2*T*B*H*A + 2*U*B*H*A} (the two projections) plus {@code 2*U*B*T*A}
 * (the {@code v} products) instead of the dot score.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "Time whole recurrent networks on one or more backends: median, min and max milliseconds over"
                        + " --repeats runs after --warmup untimed runs, and GFLOP/s of the GEMMs.",
                "",
                "FLOPs count the GEMMs only: per layer and direction 2*T*B*G*H*in (input projection) + 2*T*B*G*H*H"
                        + " (recurrent projection), G = 4 (lstm), 3 (gru), 1 (rnn); fwd_bwd counts 3 x fwd.",
                "fwd times an inference forward; fwd_bwd a training forward followed by the backward pass."
                        + " Times include copying inputs to and results from the device. Weights and inputs are"
                        + " random from --seed; setup and warmup are not timed.",
                "--cell, --mode and --backend take comma-separated lists; every combination is one workload.",
                ""})
final class BenchCommand implements Callable<Integer> {
    /** The system property the cpu backend reads its thread count from when it is opened. */
    static final String CPU_THREADS_PROPERTY = "recur.cpu.threads";

    /** What one workload times. */
    enum Mode {
        FWD, FWD_BWD;

        String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--cell", required = true, split = ",",
            paramLabel = "lstm|gru|rnn_tanh|rnn_relu|attn_dot|attn_scaled|attn_general|attn_additive",
            converter = CellConverter.class, description = "The recurrent cell(s) or attention score(s).")
    List<Cell> cells;

    @Option(names = "--dec-len", paramLabel = "U",
            description = "Decoder steps of the attention workloads (default: --seq-len).")
    Integer decLen;

    @Option(names = "--seq-len", required = true, paramLabel = "T", description = "Time steps.")
    int seqLen;

    @Option(names = "--batch", required = true, paramLabel = "B", description = "Sequences per batch.")
    int batch;

    @Option(names = "--input-size", required = true, paramLabel = "I", description = "Features per input step.")
    int inputSize;

    @Option(names = "--hidden-size", required = true, paramLabel = "H", description = "Hidden state width.")
    int hiddenSize;

    @Option(names = "--layers", defaultValue = "1", paramLabel = "L", description = "Stacked layers (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--bidirectional", description = "Two directions per layer, outputs concatenated.")
    boolean bidirectional;

    @Option(names = "--mode", required = true, split = ",", paramLabel = "fwd|fwd_bwd", converter = ModeConverter.class,
            description = "fwd: inference forward; fwd_bwd: training forward + backward.")
    List<Mode> modes;

    @Option(names = "--backend", split = ",", paramLabel = "reference|cpu|opencl|cuda",
            description = "Backend(s) to run on (default: the best available, see 'recur devices').")
    List<String> backends;

    @Option(names = "--repeats", defaultValue = "10", paramLabel = "N", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup", defaultValue = "3", paramLabel = "N",
            description = "Untimed runs first, for JIT compilation and kernel caches (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-seconds", defaultValue = "0", paramLabel = "S",
            description = "Keep warming up until S seconds have passed as well (default: ${DEFAULT-VALUE}): a JVM's JIT"
                    + " goes on compiling for seconds after the first runs, and a timed run that shares the cores with"
                    + " it reads slow.")
    double warmupSeconds;

    @Option(names = "--threads", paramLabel = "N",
            description = "Threads of the cpu backend (default: every available processor); other backends ignore it.")
    Integer threads;

    @Option(names = "--seed", defaultValue = "1", paramLabel = "S", description = "Seed of the random weights and inputs.")
    long seed;

    @Option(names = "--json", description = "One JSON line per workload: name, backend, mode, ms_median, ms_min,"
            + " ms_max, gflops, repeats, device_tensors, and per timed call the host-device traffic: bytes_to_device,"
            + " bytes_to_host, blocking_waits (null on the reference, which has no device).")
    boolean json;

    @Option(names = "--device-tensors", description = "Time RNN workloads on device tensors: inputs uploaded and the"
            + " gradient space and result buffers allocated once before timing; each timed call is forward (+ backward,"
            + " gradients SET) on"
            + " the device and one finish(), with nothing copied to or from the host. Default: the float64 host-tensor"
            + " API, whose calls include the copies.")
    boolean deviceTensors;

    /**
     * One timed result; {@code traffic} is per timed call (null where the backend has no device);
     * {@code msDeviceMedian} is the median of CUDA-event times on the cuda backend, else NaN.
     */
    record Result(String name, String backend, Mode mode, double msMedian, double msMin, double msMax, double gflops,
                  int repeats, boolean deviceTensors, PerCall traffic, double msDeviceMedian) {
        String toJson() {
            return "{\"name\":\"" + name + "\",\"backend\":\"" + backend + "\",\"mode\":\"" + mode.cliName()
                    + "\",\"ms_median\":" + msMedian + ",\"ms_min\":" + msMin + ",\"ms_max\":" + msMax
                    + ",\"gflops\":" + gflops + ",\"repeats\":" + repeats + ",\"device_tensors\":" + deviceTensors
                    + ",\"bytes_to_device\":" + (traffic == null ? "null" : traffic.bytesToDevice)
                    + ",\"bytes_to_host\":" + (traffic == null ? "null" : traffic.bytesToHost)
                    + ",\"blocking_waits\":" + (traffic == null ? "null" : traffic.blockingWaits)
                    + (Double.isNaN(msDeviceMedian) ? "" : ",\"ms_device_median\":" + msDeviceMedian) + "}";
        }
    }

    /** Host-device traffic averaged over the timed calls (the counters' delta divided by the repeats). */
    record PerCall(double bytesToDevice, double bytesToHost, double blockingWaits) {}

    @Override
    public Integer call() {
        AppSupport.positive(spec.commandLine(), "--seq-len", seqLen);
        AppSupport.positive(spec.commandLine(), "--batch", batch);
        AppSupport.positive(spec.commandLine(), "--input-size", inputSize);
        AppSupport.positive(spec.commandLine(), "--hidden-size", hiddenSize);
        AppSupport.positive(spec.commandLine(), "--layers", layers);
        AppSupport.positive(spec.commandLine(), "--repeats", repeats);
        if (warmup < 0) throw bad("--warmup: expected >= 0, got " + warmup);
        if (!(warmupSeconds >= 0) || Double.isInfinite(warmupSeconds)) {
            throw bad("--warmup-seconds: expected a finite number >= 0, got " + warmupSeconds);
        }
        if (threads != null && threads < 1) throw bad("--threads: expected >= 1, got " + threads);
        if (decLen != null) AppSupport.positive(spec.commandLine(), "--dec-len", decLen);
        int u = decLen == null ? seqLen : decLen;
        List<Cell> cellList = List.copyOf(new LinkedHashSet<>(cells));
        List<Mode> modeList = List.copyOf(new LinkedHashSet<>(modes));
        List<Object> configs = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (Cell c : cellList) {
            try {
                if (c.rnn() != null) {
                    RnnConfig rc = RnnConfig.builder(c.rnn(), inputSize, hiddenSize).layers(layers).bidirectional(bidirectional).build();
                    configs.add(rc);
                    names.add(name(rc, seqLen, batch));
                } else {
                    AttentionConfig ac = switch (c.attention()) {
                        case DOT -> AttentionConfig.dot(hiddenSize);
                        case SCALED -> AttentionConfig.scaled(hiddenSize);
                        case GENERAL -> AttentionConfig.general(hiddenSize, hiddenSize);
                        case ADDITIVE -> AttentionConfig.additive(hiddenSize, hiddenSize, hiddenSize);
                    };
                    configs.add(ac);
                    names.add(attentionName(ac, u, seqLen, batch));
                }
            } catch (IllegalArgumentException e) {
                throw bad(e.getMessage());
            }
        }
        if (deviceTensors && cellList.stream().anyMatch(c -> c.rnn() == null)) {
            throw bad("--device-tensors: attention workloads run on host tensors only; time them without it");
        }
        List<String> backendList = resolveBackends();
        if (deviceTensors && backendList.contains("reference")) {
            throw bad("--device-tensors: backend reference has no device memory (its tensors are float64 host arrays)");
        }

        PrintWriter out = spec.commandLine().getOut();
        int nameWidth = "workload".length(), backendWidth = "backend".length();
        for (String n : names) nameWidth = Math.max(nameWidth, n.length());
        for (String b : backendList) backendWidth = Math.max(backendWidth, b.length());
        String rowFormat = "%-" + nameWidth + "s  %-" + backendWidth + "s  %-7s  %10s  %10s  %10s  %9s  %7s%n";
        if (!json) {
            out.printf(rowFormat, "workload", "backend", "mode", "ms median", "ms min", "ms max", "GFLOP/s", "repeats");
            out.flush();
        }
        for (String backendName : backendList) {
            try (Backend be = open(backendName)) {
                for (Object c : configs) {
                    for (Mode m : modeList) {
                        Result r = c instanceof RnnConfig rc ? run(be, rc, m) : runAttention(be, (AttentionConfig) c, u, m);
                        if (json) {
                            out.println(r.toJson());
                        } else {
                            out.printf(rowFormat, r.name(), r.backend(), r.mode().cliName(), ms(r.msMedian()), ms(r.msMin()),
                                    ms(r.msMax()), String.format(Locale.ROOT, "%.2f", r.gflops()), r.repeats());
                        }
                        out.flush();
                    }
                }
            }
        }
        return 0;
    }

    private static String ms(double v) {
        return String.format(Locale.ROOT, v < 10 ? "%.4f" : "%.2f", v);
    }

    /** Checks every named backend before anything runs; none named means the best available. */
    private List<String> resolveBackends() {
        if (backends == null || backends.isEmpty()) return List.of(Backends.bestName());
        List<String> names = new ArrayList<>();
        for (String n : new LinkedHashSet<>(backends)) {
            BackendProvider p;
            try {
                p = Backends.provider(n.strip());
            } catch (IllegalArgumentException e) {
                throw bad("--backend: " + stripPrefix(e.getMessage(), "backend: "));
            }
            BackendProvider.Availability a = p.probe();
            if (!a.available()) throw bad("--backend " + p.name() + ": unavailable here: " + Main.oneLine(a.detail()));
            names.add(p.name());
        }
        return names;
    }

    /** Opens a backend; the cpu backend takes its thread count from a system property while it is opened. */
    private Backend open(String name) {
        if (threads == null || !name.equals("cpu")) return Backends.open(name);
        String previous = System.getProperty(CPU_THREADS_PROPERTY);
        System.setProperty(CPU_THREADS_PROPERTY, String.valueOf(threads));
        try {
            return Backends.open(name);
        } finally {
            if (previous == null) System.clearProperty(CPU_THREADS_PROPERTY);
            else System.setProperty(CPU_THREADS_PROPERTY, previous);
        }
    }

    private Result run(Backend be, RnnConfig c, Mode mode) {
        if (deviceTensors) return runOnDevice(be, c, mode);
        SplittableRandom rnd = new SplittableRandom(seed);
        RnnWeights w = RnnWeights.init(c, rnd.nextLong());
        Tensor x = random(rnd, seqLen, batch, c.inputSize());
        Tensor dy = mode == Mode.FWD_BWD ? random(rnd, seqLen, batch, c.outputWidth()) : null;
        RnnInput in = RnnInput.of(x);
        Rnn rnn;
        try {
            rnn = Rnn.create(c, be, w);
        } catch (UnsupportedOperationException e) {
            throw bad("--backend " + be.name() + ": " + e.getMessage());
        }
        try (rnn) {
            return time(be, name(c, seqLen, batch), mode, flops(c, seqLen, batch, mode), () -> once(rnn, in, dy, mode));
        }
    }

    /**
     * The same workload on device tensors: x and dy go up once, and the gradient space is allocated once, before
     * timing; a timed call runs on the device and ends with one {@code finish()}, so its time is the device's work.
     */
    private Result runOnDevice(Backend be, RnnConfig c, Mode mode) {
        if (!(be instanceof DeviceBackend db)) {
            throw bad("--device-tensors: backend " + be.name() + " has no device memory (its tensors are float64 host arrays)");
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        RnnWeights w = RnnWeights.init(c, rnd.nextLong());
        Tensor x = random(rnd, seqLen, batch, c.inputSize());
        Tensor dy = mode == Mode.FWD_BWD ? random(rnd, seqLen, batch, c.outputWidth()) : null;
        Rnn rnn;
        try {
            rnn = Rnn.create(c, be, w);
        } catch (UnsupportedOperationException e) {
            throw bad("--backend " + be.name() + ": " + e.getMessage());
        }
        int ld = c.numLayers() * c.directions();
        boolean lstm = c.cell() == CellType.LSTM;
        // Results go to buffers allocated once, as a trainer's would: a call then allocates only its trace.
        try (rnn; DeviceTensor xd = DeviceTensor.of(db, x); DeviceTensor dyd = dy == null ? null : DeviceTensor.of(db, dy);
             WeightSpace grads = mode == Mode.FWD_BWD ? rnn.newGradientSpace(db) : null;
             DeviceTensor y = DeviceTensor.allocate(db, DeviceBuffer.Type.F32, seqLen, batch, c.outputWidth());
             DeviceTensor hN = DeviceTensor.allocate(db, DeviceBuffer.Type.F32, ld, batch, c.outSize());
             DeviceTensor cN = lstm ? DeviceTensor.allocate(db, DeviceBuffer.Type.F32, ld, batch, c.hiddenSize()) : null;
             DeviceTensor dx = DeviceTensor.allocate(db, DeviceBuffer.Type.F32, seqLen, batch, c.inputSize());
             DeviceTensor dh0 = DeviceTensor.allocate(db, DeviceBuffer.Type.F32, ld, batch, c.outSize());
             DeviceTensor dc0 = lstm ? DeviceTensor.allocate(db, DeviceBuffer.Type.F32, ld, batch, c.hiddenSize()) : null) {
            DeviceRnnInput in = DeviceRnnInput.of(xd);
            DeviceRnnOutput into = DeviceRnnOutput.into(y, hN, cN);
            DeviceRnnGradients gradsInto = DeviceRnnGradients.into(dx, dh0, dc0);
            Runnable once = () -> {
                if (mode == Mode.FWD) {
                    rnn.forward(in, into).close();
                } else {
                    try (DeviceRnnOutput o = rnn.forwardTraining(in, 7L, into)) {
                        rnn.backward(o, dyd, null, null, grads, GradMode.SET, gradsInto).close();
                    }
                }
                db.finish();
            };
            return time(be, name(c, seqLen, batch), mode, flops(c, seqLen, batch, mode), once);
        }
    }

    private Result runAttention(Backend be, AttentionConfig c, int u, Mode mode) {
        SplittableRandom rnd = new SplittableRandom(seed);
        AttentionWeights w = AttentionWeights.init(c, rnd.nextLong());
        Tensor dec = random(rnd, u, batch, c.decoderSize());
        Tensor enc = random(rnd, seqLen, batch, c.encoderSize());
        Tensor dcontext = mode == Mode.FWD_BWD ? random(rnd, u, batch, c.encoderSize()) : null;
        int[] lengths = new int[batch];
        for (int b = 0; b < batch; b++) {
            lengths[b] = Math.max(1, seqLen - (int) ((long) b * (seqLen / 2) / Math.max(1, batch - 1)));
        }
        Tensor mask = Attention.maskFromLengths(lengths, seqLen);
        Attention att;
        try {
            att = Attention.create(c, be, w);
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            throw bad("--backend " + be.name() + ": " + e.getMessage());
        }
        try (att) {
            Runnable once = () -> {
                if (mode == Mode.FWD) {
                    AttentionOutput o = att.forward(dec, enc, mask);
                    blackhole(o.context());
                } else {
                    AttentionGradients g = att.backward(dec, enc, mask, dcontext);
                    blackhole(g.ddec());
                }
            };
            return time(be, attentionName(c, u, seqLen, batch), mode, attentionFlops(c, u, seqLen, batch, mode), once);
        }
    }

    private Result time(Backend be, String name, Mode mode, double flops, Runnable once) {
        long warmEnd = System.nanoTime() + (long) (warmupSeconds * 1e9);
        for (int i = 0; i < warmup || System.nanoTime() - warmEnd < 0; i++) once.run();
        Traffic before = be instanceof DeviceBackend db ? db.traffic() : null;
        long[] ns = new long[repeats];
        // On CUDA each run also sits between two CUDA events: the device's own time beside the host's.
        double[] device = be instanceof dev.recur.backend.cuda.CudaBackend ? new double[repeats] : null;
        for (int i = 0; i < repeats; i++) {
            long t0 = System.nanoTime();
            if (device != null) device[i] = ((dev.recur.backend.cuda.CudaBackend) be).deviceMillis(once);
            else once.run();
            // A zero reading (a coarse clock) would make the throughput infinite, which JSON cannot carry.
            ns[i] = Math.max(1, System.nanoTime() - t0);
        }
        PerCall perCall = null;
        if (before != null) {
            Traffic d = ((DeviceBackend) be).traffic().minus(before);
            perCall = new PerCall((double) d.bytesToDevice() / repeats, (double) d.bytesToHost() / repeats,
                    (double) d.blockingWaits() / repeats);
        }
        Arrays.sort(ns);
        double median = repeats % 2 == 1 ? ns[repeats / 2] : (ns[repeats / 2 - 1] + ns[repeats / 2]) / 2.0;
        double deviceMedian = Double.NaN;
        if (device != null) {
            Arrays.sort(device);
            deviceMedian = repeats % 2 == 1 ? device[repeats / 2] : (device[repeats / 2 - 1] + device[repeats / 2]) / 2.0;
        }
        return new Result(name, be.name(), mode, median / 1e6, ns[0] / 1e6, ns[repeats - 1] / 1e6,
                flops / (median / 1e9) / 1e9, repeats, deviceTensors, perCall, deviceMedian);
    }

    /** Score and context products of one attention workload (see the class comment). */
    static double attentionFlops(AttentionConfig c, int u, int t, int batch, Mode mode) {
        double he = c.encoderSize(), hd = c.decoderSize();
        double context = 2.0 * u * batch * t * he;
        double scores = switch (c.score()) {
            case DOT, SCALED -> 2.0 * u * batch * t * he;
            case GENERAL -> 2.0 * u * batch * hd * he + 2.0 * u * batch * t * he;
            case ADDITIVE -> 2.0 * t * batch * he * c.attentionSize() + 2.0 * u * batch * hd * c.attentionSize()
                    + 2.0 * u * batch * t * c.attentionSize();
        };
        double total = scores + context;
        return mode == Mode.FWD_BWD ? 3 * total : total;
    }

    /** e.g. {@code attn_dot_u50_t100_b32_h256}. */
    static String attentionName(AttentionConfig c, int u, int t, int batch) {
        return "attn_" + c.score().name().toLowerCase(Locale.ROOT) + "_u" + u + "_t" + t + "_b" + batch + "_h" + c.encoderSize();
    }

    private static void once(Rnn rnn, RnnInput in, Tensor dy, Mode mode) {
        if (mode == Mode.FWD) {
            try (RnnOutput o = rnn.forward(in)) {
                blackhole(o.y());
            }
        } else {
            try (RnnOutput o = rnn.forwardTraining(in, 7L)) {
                RnnGradients g = rnn.backward(o, dy, null, null);
                blackhole(g.dx());
            }
        }
    }

    /** Reads one result value so no part of the call can be treated as dead. */
    private static volatile double sink;

    private static void blackhole(Tensor t) {
        sink = t.data()[0];
    }

    /** GEMM FLOPs of one workload (see the class comment). */
    static double flops(RnnConfig c, int steps, int batch, Mode mode) {
        double total = 0;
        double gh = (double) c.gates() * c.hiddenSize();
        for (int k = 0; k < c.numLayers(); k++) {
            double perDirection = 2.0 * steps * batch * gh * (c.layerInputSize(k) + c.outSize());
            if (c.projSize() > 0) perDirection += 2.0 * steps * batch * c.projSize() * c.hiddenSize();
            total += c.directions() * perDirection;
        }
        return mode == Mode.FWD_BWD ? 3 * total : total;
    }

    /** A workload's name: cell and sizes, e.g. {@code lstm_t50_b32_i256_h256_l2_bi}. */
    static String name(RnnConfig c, int steps, int batch) {
        return c.cell().cliName() + "_t" + steps + "_b" + batch + "_i" + c.inputSize() + "_h" + c.hiddenSize()
                + (c.numLayers() > 1 ? "_l" + c.numLayers() : "") + (c.bidirectional() ? "_bi" : "");
    }

    /** Uniform in [-1, 1), rounded to float32 so every backend sees the same values. */
    private static Tensor random(SplittableRandom rnd, int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-1, 1);
        return t;
    }

    private ParameterException bad(String message) {
        return new Main.BadInput(spec.commandLine(), message);
    }

    private static String stripPrefix(String s, String prefix) {
        return s != null && s.startsWith(prefix) ? s.substring(prefix.length()) : s;
    }

    /** A workload's cell: an RNN cell or an attention score (exactly one is set). */
    record Cell(CellType rnn, AttentionScore attention) {}

    /** {@code lstm|gru|rnn_tanh|rnn_relu} or {@code attn_dot|attn_scaled|attn_general|attn_additive}. */
    static final class CellConverter implements CommandLine.ITypeConverter<Cell> {
        private static final String EXPECTED =
                "expected one of lstm, gru, rnn_tanh, rnn_relu, attn_dot, attn_scaled, attn_general, attn_additive";

        @Override
        public Cell convert(String value) {
            String v = value.strip().toLowerCase(Locale.ROOT);
            if (v.startsWith("attn_")) {
                for (AttentionScore a : AttentionScore.values()) {
                    if (a.name().equalsIgnoreCase(v.substring(5))) return new Cell(null, a);
                }
                throw new CommandLine.TypeConversionException(EXPECTED + ", got '" + value + "'");
            }
            try {
                return new Cell(CellType.parse(v), null);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(EXPECTED + ", got '" + value + "'");
            }
        }
    }

    static final class ModeConverter implements CommandLine.ITypeConverter<Mode> {
        @Override
        public Mode convert(String value) {
            for (Mode m : Mode.values()) if (m.cliName().equalsIgnoreCase(value.strip())) return m;
            throw new CommandLine.TypeConversionException("expected fwd or fwd_bwd, got '" + value + "'");
        }
    }
}
