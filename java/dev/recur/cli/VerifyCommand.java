package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
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
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * {@code recur verify}: the correctness report. A fixed list of network configurations, covering every cell
 * and option, runs forward (inference and training) and backward on every available device backend and on
 * the float64 reference; every result tensor and gradient is compared with the reference's.
 *
 * <p>The rule, per tensor: {@code max|got - ref| / max(1, max|ref|) <= tolerance} (1e-4 by default: the
 * device backends compute in float32). A backend that refuses a configuration with
 * {@link UnsupportedOperationException} is reported as unsupported, which fails the run only with
 * {@code --strict}. Exit 0 when everything compared passes, 1 on any failure.
 */
@Command(name = "verify", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "Check every available device backend against the float64 reference: a fixed list of network"
                        + " configurations (every cell and option) run forward (inference and training) and backward,"
                        + " compared per tensor.",
                "",
                "Columns: max abs err = max|got - ref|; max rel err = max abs err / max(1, max|ref|); pass when the"
                        + " relative error is at most --tolerance. A configuration a backend refuses is 'unsupported'.",
                "Exit 0 when every comparison passes (and, with --strict, nothing is unsupported), 1 otherwise.",
                ""})
final class VerifyCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--backend", split = ",", paramLabel = "cpu|opencl|cuda",
            description = "Verify only these backends (default: every available one except the reference).")
    List<String> backendNames;

    @Option(names = "--quick", description = "A short list of configurations (one or two per cell and option family).")
    boolean quick;

    @Option(names = "--strict", description = "Count a configuration a backend does not support as a failure.")
    boolean strict;

    @Option(names = "--tolerance", defaultValue = "1e-4", paramLabel = "TOL",
            description = "Largest relative error that passes (default: ${DEFAULT-VALUE}).")
    double tolerance;

    @Option(names = "--failures-only", description = "Print only the rows that did not pass (and the summary).")
    boolean failuresOnly;

    /** Where the backends come from; tests substitute their own list. */
    Supplier<List<BackendProvider>> providers = Backends::providers;

    /** One network configuration with its sizes. */
    record Case(String name, RnnConfig config, int steps, int batch, boolean varLengths, long seed) {}

    /** The result of one comparison. */
    enum Status { PASS, FAIL, UNSUPPORTED, ERROR }

    record Row(String config, String backend, String tensor, double maxAbs, double maxRel, Status status, String note) {}

    @Override
    public Integer call() {
        if (!(tolerance > 0) || Double.isInfinite(tolerance)) throw bad("--tolerance: expected a number > 0, got " + tolerance);
        PrintWriter out = spec.commandLine().getOut();
        List<BackendProvider> targets = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        selectBackends(targets, skipped);
        if (targets.isEmpty()) {
            out.println("verify: no device backend to verify: only the reference is available here"
                    + (skipped.isEmpty() ? "" : " (" + String.join("; ", skipped) + ")"));
            out.flush();
            return 0;
        }
        List<Case> cases = cases(quick);
        int caseWidth = "configuration".length();
        for (Case c : cases) caseWidth = Math.max(caseWidth, c.name().length());
        int backendWidth = "backend".length();
        for (BackendProvider p : targets) backendWidth = Math.max(backendWidth, p.name().length());
        String fmt = "%-" + caseWidth + "s  %-" + backendWidth + "s  %-24s  %12s  %12s  %s%n";
        for (String s : skipped) out.println("verify: not verified: " + s);
        out.printf(fmt, "configuration", "backend", "tensor", "max abs err", "max rel err", "result");
        out.flush();

        Map<String, int[]> counts = new LinkedHashMap<>();
        Map<String, Double> worst = new LinkedHashMap<>();
        try (Backend reference = ReferenceBackend.PROVIDER.open()) {
            for (BackendProvider p : targets) {
                int[] c = counts.computeIfAbsent(p.name(), k -> new int[Status.values().length]);
                try (Backend device = p.open()) {
                    for (Case cs : cases) {
                        for (Row r : verify(reference, device, cs, tolerance)) {
                            c[r.status().ordinal()]++;
                            if (r.status() == Status.PASS || r.status() == Status.FAIL) {
                                worst.merge(p.name(), r.maxRel(), Math::max);
                            }
                            if (failuresOnly && r.status() == Status.PASS) continue;
                            out.printf(fmt, r.config(), r.backend(), r.tensor(), num(r.maxAbs()), num(r.maxRel()),
                                    label(r));
                        }
                        out.flush();
                    }
                } catch (RuntimeException | LinkageError e) {
                    // The device itself failed to open (or was lost): a failed verification, not a crash.
                    c[Status.ERROR.ordinal()]++;
                    out.printf(fmt, "(open)", p.name(), "-", "-", "-", "ERROR: " + Main.oneLine(e.toString()));
                }
            }
        }
        boolean ok = true;
        for (Map.Entry<String, int[]> e : counts.entrySet()) {
            int[] c = e.getValue();
            out.printf(Locale.ROOT, "verify: %s: %d passed, %d failed, %d errors, %d unsupported; worst relative error %s"
                            + " (tolerance %s)%n", e.getKey(), c[Status.PASS.ordinal()], c[Status.FAIL.ordinal()],
                    c[Status.ERROR.ordinal()], c[Status.UNSUPPORTED.ordinal()],
                    worst.containsKey(e.getKey()) ? num(worst.get(e.getKey())) : "-", num(tolerance));
            if (c[Status.FAIL.ordinal()] > 0 || c[Status.ERROR.ordinal()] > 0) ok = false;
            if (strict && c[Status.UNSUPPORTED.ordinal()] > 0) ok = false;
        }
        out.println("verify: " + (ok ? "PASSED" : "FAILED") + (strict ? " (strict)" : ""));
        out.flush();
        return ok ? 0 : 1;
    }

    private static String label(Row r) {
        return switch (r.status()) {
            case PASS -> "pass";
            case FAIL -> "FAIL" + (r.note().isEmpty() ? "" : ": " + r.note());
            case UNSUPPORTED -> "unsupported: " + r.note();
            case ERROR -> "ERROR: " + r.note();
        };
    }

    private static String num(double v) {
        if (Double.isNaN(v)) return "-";
        if (Double.isInfinite(v)) return "inf";
        return String.format(Locale.ROOT, "%.3e", v);
    }

    /** The backends to verify: named ones (each must exist and be available), else every available device one. */
    private void selectBackends(List<BackendProvider> targets, List<String> skipped) {
        List<BackendProvider> all = providers.get();
        if (backendNames == null || backendNames.isEmpty()) {
            for (BackendProvider p : all) {
                if (p.name().equals("reference")) continue;
                BackendProvider.Availability a = probe(p);
                if (a.available()) targets.add(p);
                else skipped.add(p.name() + " unavailable: " + Main.oneLine(a.detail()));
            }
            return;
        }
        List<String> known = new ArrayList<>();
        for (BackendProvider p : all) known.add(p.name());
        for (String raw : new LinkedHashSet<>(backendNames)) {
            String n = raw.strip().toLowerCase(Locale.ROOT);
            if (n.equals("reference")) {
                throw bad("--backend reference: the reference is what the others are verified against; name a device"
                        + " backend (" + String.join(", ", known.stream().filter(k -> !k.equals("reference")).toList()) + ")");
            }
            BackendProvider found = null;
            for (BackendProvider p : all) if (p.name().equals(n)) found = p;
            if (found == null) throw bad("--backend: expected one of " + known + ", got '" + raw + "'");
            BackendProvider.Availability a = probe(found);
            if (!a.available()) throw bad("--backend " + n + ": unavailable here: " + Main.oneLine(a.detail()));
            targets.add(found);
        }
    }

    private static BackendProvider.Availability probe(BackendProvider p) {
        try {
            return p.probe();
        } catch (RuntimeException | LinkageError e) {
            return BackendProvider.Availability.no("probe failed: " + e);
        }
    }

    /** Runs one configuration on the reference and the device and compares every tensor. */
    static List<Row> verify(Backend reference, Backend device, Case cs, double tol) {
        List<Row> rows = new ArrayList<>();
        Map<String, Tensor> ref;
        try {
            ref = results(reference, cs);
        } catch (RuntimeException e) {
            // The configuration list is fixed and valid: a reference failure is a bug worth seeing, not a skip.
            rows.add(new Row(cs.name(), device.name(), "-", Double.NaN, Double.NaN, Status.ERROR,
                    "the reference failed: " + Main.oneLine(e.toString())));
            return rows;
        }
        Map<String, Tensor> got;
        try {
            got = results(device, cs);
        } catch (UnsupportedOperationException e) {
            rows.add(new Row(cs.name(), device.name(), "-", Double.NaN, Double.NaN, Status.UNSUPPORTED,
                    Main.oneLine(e.getMessage())));
            return rows;
        } catch (RuntimeException | LinkageError e) {
            rows.add(new Row(cs.name(), device.name(), "-", Double.NaN, Double.NaN, Status.ERROR, Main.oneLine(e.toString())));
            return rows;
        }
        for (Map.Entry<String, Tensor> e : ref.entrySet()) {
            rows.add(compare(cs.name(), device.name(), e.getKey(), e.getValue(), got.get(e.getKey()), tol));
        }
        return rows;
    }

    /** Max abs and relative error of one tensor against {@code tol}; NaN or infinity in the device result fails. */
    static Row compare(String config, String backend, String name, Tensor ref, Tensor got, double tol) {
        if (got == null) return new Row(config, backend, name, Double.NaN, Double.NaN, Status.FAIL, "missing from the result");
        if (!ref.sameShape(got.shape())) {
            return new Row(config, backend, name, Double.NaN, Double.NaN, Status.FAIL,
                    "shape " + Tensor.shapeString(got.shape()) + ", expected " + Tensor.shapeString(ref.shape()));
        }
        double[] r = ref.data(), g = got.data();
        double maxAbs = 0;
        int worst = -1;
        for (int i = 0; i < r.length; i++) {
            double d = Math.abs(g[i] - r[i]);
            if (Double.isNaN(d)) d = Double.POSITIVE_INFINITY;
            if (worst < 0 || d > maxAbs) {
                maxAbs = d;
                worst = i;
            }
        }
        double maxRel = maxAbs / Math.max(1.0, ref.maxAbs());
        if (maxRel <= tol) return new Row(config, backend, name, maxAbs, maxRel, Status.PASS, "");
        return new Row(config, backend, name, maxAbs, maxRel, Status.FAIL, "worst at " + index(worst, ref.shape())
                + ": expected " + r[worst] + ", got " + g[worst]);
    }

    private static String index(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
        return Arrays.toString(idx);
    }

    /** Every result of one configuration on one backend, by tensor name, in a fixed order. */
    static Map<String, Tensor> results(Backend be, Case cs) {
        RnnConfig c = cs.config();
        SplittableRandom rnd = new SplittableRandom(cs.seed());
        RnnWeights w = randomWeights(c, rnd.nextLong());
        int t = cs.steps(), b = cs.batch(), ld = c.numLayers() * c.directions();
        Tensor x = c.batchFirst() ? random(rnd, 1, b, t, c.inputSize()) : random(rnd, 1, t, b, c.inputSize());
        Tensor h0 = random(rnd, 0.5, ld, b, c.outSize());
        Tensor c0 = c.cell() == CellType.LSTM ? random(rnd, 0.5, ld, b, c.hiddenSize()) : null;
        int[] lengths = null;
        if (cs.varLengths()) {
            lengths = new int[b];
            for (int i = 0; i < b; i++) lengths[i] = 1 + rnd.nextInt(t);
            lengths[rnd.nextInt(b)] = t;
        }
        Tensor dy = c.batchFirst() ? random(rnd, 1, b, t, c.outputWidth()) : random(rnd, 1, t, b, c.outputWidth());
        Tensor dhN = random(rnd, 1, ld, b, c.outSize());
        Tensor dcN = c0 != null ? random(rnd, 1, ld, b, c.hiddenSize()) : null;
        long dropoutSeed = rnd.nextLong();

        RnnInput in = new RnnInput(x, h0, c0, lengths);
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (Rnn rnn = Rnn.create(c, be, w)) {
            try (RnnOutput o = rnn.forward(in)) {
                m.put("y", o.y());
                m.put("h_n", o.hN());
                if (o.cN() != null) m.put("c_n", o.cN());
            }
            try (RnnOutput o = rnn.forwardTraining(in, dropoutSeed)) {
                m.put("y/train", o.y());
                m.put("h_n/train", o.hN());
                if (o.cN() != null) m.put("c_n/train", o.cN());
                RnnGradients g = rnn.backward(o, dy, dhN, dcN);
                m.put("dx", g.dx());
                m.put("dh0", g.dh0());
                if (g.dc0() != null) m.put("dc0", g.dc0());
                for (String name : w.asMap().keySet()) m.put("d" + name, g.weight(name));
            }
        }
        return m;
    }

    /** Every parameter uniform in [-0.6, 0.6] around its neutral value (float32-exact), so every gradient is non-trivial. */
    static RnnWeights randomWeights(RnnConfig c, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        RnnWeights w = RnnWeights.init(c, seed);
        for (Map.Entry<String, Tensor> e : w.asMap().entrySet()) {
            double[] d = e.getValue().data();
            boolean gain = e.getKey().startsWith("ln_") && e.getKey().contains("_weight");
            for (int i = 0; i < d.length; i++) d[i] = (float) ((gain ? 1.0 : 0.0) + rnd.nextDouble(-0.6, 0.6));
        }
        return w;
    }

    private static Tensor random(SplittableRandom rnd, double scale, int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-scale, scale);
        return t;
    }

    /** The fixed configurations: every cell and option; {@code quick} keeps one or two of each family. */
    static List<Case> cases(boolean quick) {
        List<Case> list = new ArrayList<>();
        CellType lstm = CellType.LSTM, gru = CellType.GRU;
        long seed = 1000;
        if (quick) {
            list.add(new Case("lstm 1 layer", cfg(lstm, 4, 5).build(), 5, 3, false, seed++));
            list.add(new Case("gru 2 layers lengths", cfg(gru, 4, 5).layers(2).build(), 6, 3, true, seed++));
            list.add(new Case("rnn_tanh bi sum lengths", cfg(CellType.RNN_TANH, 3, 5).bidirectional(true)
                    .merge(MergeMode.SUM).build(), 5, 4, true, seed++));
            list.add(new Case("rnn_relu bi 2 layers concat", cfg(CellType.RNN_RELU, 4, 6).layers(2).bidirectional(true)
                    .build(), 5, 3, true, seed++));
            list.add(new Case("lstm proj peephole bi mul", cfg(lstm, 4, 6).projSize(3).peephole(true).bidirectional(true)
                    .merge(MergeMode.MUL).build(), 5, 3, true, seed++));
            list.add(new Case("lstm coupled ave residual", cfg(lstm, 5, 5).coupledGate(true).layers(2).bidirectional(true)
                    .merge(MergeMode.AVE).residual(true).build(), 4, 3, true, seed++));
            list.add(new Case("gru reset-before", cfg(gru, 4, 5).gruReset(GruReset.BEFORE).build(), 5, 3, true, seed++));
            list.add(new Case("lstm layer norm", cfg(lstm, 4, 5).layerNorm(true).build(), 5, 3, true, seed++));
            list.add(new Case("lstm all dropouts bi 2 layers", cfg(lstm, 5, 5).layers(2).bidirectional(true)
                    .inputDropout(0.2).recurrentDropout(0.3).dropout(0.25).build(), 5, 3, true, seed++));
            return list;
        }
        for (CellType cell : CellType.values()) {
            String n = cell.cliName();
            list.add(new Case(n + " 1 layer", cfg(cell, 4, 5).build(), 5, 3, false, seed++));
            list.add(new Case(n + " 2 layers lengths", cfg(cell, 4, 5).layers(2).build(), 6, 3, true, seed++));
            list.add(new Case(n + " 3 layers", cfg(cell, 3, 4).layers(3).build(), 4, 2, false, seed++));
            for (MergeMode m : MergeMode.values()) {
                String mn = m.name().toLowerCase(Locale.ROOT);
                list.add(new Case(n + " bi " + mn + " lengths", cfg(cell, 3, 5).bidirectional(true).merge(m).build(),
                        5, 4, true, seed++));
                list.add(new Case(n + " bi 2 layers " + mn, cfg(cell, 4, 6).layers(2).bidirectional(true).merge(m).build(),
                        5, 3, true, seed++));
            }
            list.add(new Case(n + " bi 3 layers mul residual", cfg(cell, 5, 5).layers(3).bidirectional(true)
                    .merge(MergeMode.MUL).residual(true).build(), 4, 3, true, seed++));
            list.add(new Case(n + " 2 layers residual", cfg(cell, 6, 6).layers(2).residual(true).build(), 5, 2, false, seed++));
            list.add(new Case(n + " 2 layers inter-layer dropout", cfg(cell, 4, 5).layers(2).dropout(0.4).build(),
                    5, 3, true, seed++));
            list.add(new Case(n + " no bias bi", cfg(cell, 4, 5).bias(false).bidirectional(true).build(), 4, 2, true, seed++));
            list.add(new Case(n + " batch-first bi sum", cfg(cell, 3, 4).batchFirst(true).bidirectional(true)
                    .merge(MergeMode.SUM).build(), 4, 3, true, seed++));
            list.add(new Case(n + " batch 1", cfg(cell, 3, 4).build(), 7, 1, false, seed++));
            list.add(new Case(n + " wide T=24 B=9 I=33 H=40 bi", cfg(cell, 33, 40).bidirectional(true).build(), 24, 9, true,
                    seed++));
        }
        list.add(new Case("lstm projection", cfg(lstm, 4, 6).projSize(3).build(), 5, 3, true, seed++));
        list.add(new Case("lstm projection bi 2 layers ave", cfg(lstm, 4, 6).projSize(4).layers(2).bidirectional(true)
                .merge(MergeMode.AVE).build(), 5, 3, true, seed++));
        list.add(new Case("lstm peephole", cfg(lstm, 4, 5).peephole(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm coupled", cfg(lstm, 4, 5).coupledGate(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm peephole coupled bi", cfg(lstm, 4, 5).peephole(true).coupledGate(true)
                .bidirectional(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm projection peephole bi", cfg(lstm, 4, 6).projSize(2).peephole(true)
                .bidirectional(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm layer norm", cfg(lstm, 4, 5).layerNorm(true).build(), 5, 3, true, seed++));
        list.add(new Case("lstm layer norm peephole projection bi", cfg(lstm, 4, 6).layerNorm(true).peephole(true)
                .projSize(3).bidirectional(true).build(), 5, 3, true, seed++));
        list.add(new Case("gru reset-before", cfg(gru, 4, 5).gruReset(GruReset.BEFORE).build(), 5, 3, true, seed++));
        list.add(new Case("gru reset-before bi 2 layers", cfg(gru, 4, 5).gruReset(GruReset.BEFORE).layers(2)
                .bidirectional(true).build(), 5, 3, true, seed++));
        list.add(new Case("gru layer norm", cfg(gru, 4, 5).layerNorm(true).build(), 5, 3, true, seed++));
        list.add(new Case("gru layer norm reset-before", cfg(gru, 4, 5).layerNorm(true).gruReset(GruReset.BEFORE).build(),
                5, 3, true, seed++));
        for (CellType cell : new CellType[] {lstm, gru}) {
            String n = cell.cliName();
            list.add(new Case(n + " input dropout", cfg(cell, 4, 5).inputDropout(0.3).build(), 5, 3, true, seed++));
            list.add(new Case(n + " recurrent dropout", cfg(cell, 4, 5).recurrentDropout(0.35).build(), 5, 3, true, seed++));
            list.add(new Case(n + " all dropouts bi 2 layers residual", cfg(cell, 5, 5).layers(2).bidirectional(true)
                    .merge(MergeMode.SUM).inputDropout(0.2).recurrentDropout(0.3).dropout(0.25).residual(true).build(),
                    5, 3, true, seed++));
        }
        list.add(new Case("lstm projection dropouts bi", cfg(lstm, 4, 6).projSize(3).bidirectional(true)
                .recurrentDropout(0.3).inputDropout(0.2).build(), 5, 3, true, seed++));
        list.add(new Case("lstm layer norm dropouts", cfg(lstm, 4, 5).layerNorm(true).inputDropout(0.2)
                .recurrentDropout(0.3).build(), 5, 3, true, seed++));
        return list;
    }

    private static RnnConfig.Builder cfg(CellType cell, int in, int hidden) {
        return RnnConfig.builder(cell, in, hidden);
    }

    private ParameterException bad(String message) {
        return new Main.BadInput(spec.commandLine(), message);
    }
}
