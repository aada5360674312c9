package dev.recur.bench;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Leaks;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Soak test (run by {@code bench/soak}, not by CI): many training steps (forward, backward, an SGD update
 * uploaded with {@code setWeights}) on one network, sampling the device memory in use and the JVM heap (after
 * a GC) and the process's resident set every {@code --every} steps. Both must stay flat: a leak of a buffer, a trace or a host array per step
 * shows as a column that grows. Exits with status 1 if device memory at the end differs from the first sample,
 * a result is not finite, or anything was freed by the GC safety net instead of closed.
 *
 * <pre>
 * java -cp target/benchmarks.jar dev.recur.bench.Soak [--backend opencl] [--steps 10000] [--every 1000]
 *      [--T 20] [--B 8] [--I 64] [--H 64] [--layers 2] [--unidirectional]
 * </pre>
 */
public final class Soak {
    private Soak() {}

    public static void main(String[] args) {
        String backend = "opencl";
        int steps = 10_000, every = 1_000, t = 20, b = 8, in = 64, h = 64, layers = 2;
        boolean bi = true;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--backend" -> backend = args[++i];
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--every" -> every = Integer.parseInt(args[++i]);
                case "--T" -> t = Integer.parseInt(args[++i]);
                case "--B" -> b = Integer.parseInt(args[++i]);
                case "--I" -> in = Integer.parseInt(args[++i]);
                case "--H" -> h = Integer.parseInt(args[++i]);
                case "--layers" -> layers = Integer.parseInt(args[++i]);
                case "--unidirectional" -> bi = false;
                default -> {
                    System.err.println("unknown argument '" + a + "'; see the javadoc of dev.recur.bench.Soak");
                    System.exit(2);
                }
            }
        }
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, in, h).layers(layers).bidirectional(bi).build();
        MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
        long leaksBefore = Leaks.collectedCount();
        boolean ok = true;
        try (Backend be = Backends.open(backend)) {
            DeviceBackend device = be instanceof DeviceBackend d ? d : null;
            System.out.printf(Locale.ROOT, "soak: %s on %s (%s), LSTM T=%d B=%d I=%d H=%d layers=%d %s, %d steps%n",
                    be.name(), be.deviceName(), Runtime.version(), t, b, in, h, layers, bi ? "bidirectional" : "unidirectional",
                    steps);
            System.out.printf(Locale.ROOT, "%8s %9s %10s %16s %14s %12s %14s%n", "step", "time s", "steps/s", "device bytes",
                    "heap MiB (GC)", "RSS MiB", "loss");
            SplittableRandom rnd = new SplittableRandom(1);
            RnnWeights w = RnnWeights.init(cfg, 7);
            Tensor target = random(rnd, t, b, cfg.outputWidth());
            long firstDevice = -1, lastDevice = -1;
            long t0 = System.nanoTime(), tLast = t0;
            try (Rnn rnn = Rnn.create(cfg, be, w)) {
                for (int step = 1; step <= steps; step++) {
                    Tensor x = random(rnd, t, b, in);
                    double loss;
                    try (RnnOutput out = rnn.forwardTraining(RnnInput.of(x), step)) {
                        // Loss 0.5 * |y - target|^2: dy = y - target.
                        Tensor dy = Tensor.zeros(out.y().shape());
                        double[] y = out.y().data(), tg = target.data(), d = dy.data();
                        loss = 0;
                        for (int i = 0; i < y.length; i++) {
                            d[i] = y[i] - tg[i];
                            loss += 0.5 * d[i] * d[i];
                        }
                        RnnGradients g = rnn.backward(out, dy, null, null);
                        if (step % 10 == 0) {
                            for (Map.Entry<String, Tensor> e : w.asMap().entrySet()) {
                                double[] p = e.getValue().data(), gp = g.weight(e.getKey()).data();
                                for (int i = 0; i < p.length; i++) p[i] -= 1e-4 * gp[i];
                            }
                            rnn.setWeights(w);
                        }
                    }
                    if (!Double.isFinite(loss)) {
                        System.out.println("step " + step + ": loss is " + loss);
                        ok = false;
                        break;
                    }
                    if (step % every == 0 || step == 1) {
                        long now = System.nanoTime();
                        System.gc();
                        long heap = mem.getHeapMemoryUsage().getUsed();
                        long dev = device != null ? device.memoryInUse() : -1;
                        if (firstDevice < 0) firstDevice = dev;
                        lastDevice = dev;
                        double rate = step == 1 ? 1e9 / (now - t0) : every * 1e9 / (now - tLast);
                        System.out.printf(Locale.ROOT, "%8d %9.1f %10.1f %16d %14.1f %12s %14.4f%n", step, (now - t0) / 1e9,
                                rate, dev, heap / 1048576.0, rssMiB(), loss / (t * b));
                        tLast = System.nanoTime();
                    }
                }
            }
            long afterClose = device != null ? device.memoryInUse() : 0;
            System.out.printf(Locale.ROOT, "device bytes: first sample %d, last sample %d, after close %d%n", firstDevice,
                    lastDevice, afterClose);
            if (firstDevice != lastDevice || afterClose != 0) {
                System.out.println("FAIL: device memory in use is not flat");
                ok = false;
            }
        }
        long leaked = Leaks.collectedCount() - leaksBefore;
        if (leaked != 0) {
            System.out.println("FAIL: " + leaked + " objects were freed by the GC safety net instead of closed");
            ok = false;
        }
        System.out.println(ok ? "soak: OK" : "soak: FAILED");
        System.exit(ok ? 0 : 1);
    }

    /**
     * The process's resident set (Linux {@code /proc/self/status}), which also shows native memory the driver
     * holds outside the device account; "n/a" elsewhere.
     */
    private static String rssMiB() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    long kb = Long.parseLong(line.substring(6).replace("kB", "").strip());
                    return String.format(Locale.ROOT, "%.1f", kb / 1024.0);
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // Not Linux, or an unexpected format: the column is informative only.
        }
        return "n/a";
    }

    private static Tensor random(SplittableRandom r, int... shape) {
        Tensor x = Tensor.zeros(shape);
        double[] d = x.data();
        for (int i = 0; i < d.length; i++) d[i] = r.nextDouble(-1, 1);
        return x;
    }
}
