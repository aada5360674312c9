package dev.recur.cli;

import dev.recur.apps.Charts;
import dev.recur.apps.DateDemo;
import dev.recur.apps.DateFormats;
import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * {@code recur demo}: a seq2seq model with attention learns to turn dates written by people into ISO dates,
 * then shows its held-out accuracy, a few translations, the loss curve and one attention map.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "Learn to turn dates written by people into ISO dates: seq2seq with attention, progress, accuracy, pictures.",
                "",
                "Train a character-level seq2seq model with attention (bidirectional GRU encoder, GRU decoder, Luong dot"
                        + " attention) to turn dates written by people (\"the 3rd of March 1997\", \"3/3/97\", \"Mar 3, 1997\","
                        + " \"Monday, March 3 1997\", \"1997.03.03\", ...) into ISO 1997-03-03.",
                "Prints the held-out exact-match accuracy and a few translations, and writes loss.png and attention.png"
                        + " into the --out folder. Seeded: the same seed and backend give the same result.",
                ""})
final class DemoCommand implements Callable<Integer> {
    /** Default training steps: held-out exact match 99.8% on opencl, 100% on cpu, 99.7% on reference (seed 1, 2026-12-02), in 4-10 s. */
    static final int DEFAULT_STEPS = 400;

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--backend", paramLabel = "reference|cpu|opencl|cuda",
            description = "Where the recurrent networks and attention run (default: the best available, cuda, opencl,"
                    + " cpu, reference in that order; see 'recur devices').")
    String backend;

    @Option(names = "--seed", defaultValue = "1", description = "Seeds the data, the weights and the order (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--steps", defaultValue = "" + DEFAULT_STEPS, description = "Training steps of 32 examples (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--held-out", defaultValue = "1000", paramLabel = "N",
            description = "Held-out written dates, never trained on, for the exact-match accuracy (default: ${DEFAULT-VALUE}).")
    int heldOut;

    @Option(names = "--json", description = "Also print the summary as one JSON object on the last line: backend, steps,"
            + " seconds, accuracy, parameters, and the host-device traffic per training step and of the held-out decoding.")
    boolean json;

    @Option(names = "--out", defaultValue = "demo-out", paramLabel = "DIR",
            description = "Folder for loss.png and attention.png (created; default: ${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws IOException {
        CommandLine cl = spec.commandLine();
        AppSupport.positive(cl, "--steps", steps);
        AppSupport.positive(cl, "--held-out", heldOut);
        AppSupport.outputFolder(cl, "--out", out);
        PrintWriter w = cl.getOut();
        DateDemo demo = new DateDemo(DateDemo.Settings.defaults(steps, seed).withHeldOut(heldOut));
        long t0 = System.nanoTime();
        DateDemo.Result r;
        String backendName;
        try (Backend be = AppSupport.openBackend(cl, backend)) {
            backendName = be.name();
            w.printf("Dates written by people -> ISO 8601: a character-level seq2seq model with attention%n");
            w.printf("backend   %s (%s)%n", be.name(), be.deviceName());
            if (backend == null) {
                // A chosen default says why the ones before it were passed over: speed and accuracy differ.
                for (BackendProvider p : Backends.providers()) {
                    if (p.name().equals(be.name())) break;
                    w.printf("          (%s unavailable: %s)%n", p.name(), p.probe().detail());
                }
            }
            var mc = demo.modelConfig();
            w.printf("model     bidirectional GRU encoder %d+%d, GRU decoder %d, Luong dot attention; vocabularies %d in, %d out%n",
                    mc.encoder().hiddenSize(), mc.encoder().hiddenSize(), mc.decoder().hiddenSize(), mc.sourceVocab(), mc.targetVocab());
            w.printf("data      %d written forms (e.g. \"%s\", \"%s\"), dates %s..%s; %d held out%n", DateFormats.formats().size(),
                    DateFormats.formats().get(14).write(java.time.LocalDate.of(1997, 3, 3)),
                    DateFormats.formats().get(9).write(java.time.LocalDate.of(1997, 3, 3)), DateFormats.FIRST, DateFormats.LAST, heldOut);
            w.printf("training  %d steps x %d examples, Adam, seed %d%n", steps, demo.settings().batch(), seed);
            w.flush();
            double[] recent = new double[2];
            try (ProgressBar pb = AppSupport.progress(cl, "train", steps)) {
                r = demo.run(be, (step, loss, acc) -> {
                    // Exponential moving averages: single batches are noisy.
                    double a = step == 0 ? 1 : 0.1;
                    recent[0] = step == 0 ? loss : (1 - a) * recent[0] + a * loss;
                    recent[1] = step == 0 ? acc : (1 - a) * recent[1] + a * acc;
                    pb.step();
                    // A step on the device does not count correct characters (NaN): the loss alone then.
                    pb.setExtraMessage(Double.isNaN(acc) ? String.format(Locale.ROOT, " loss %.4f", recent[0])
                            : String.format(Locale.ROOT, " loss %.4f  char acc %.1f%%", recent[0], 100 * recent[1]));
                });
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        long right = r.heldOut().stream().filter(DateDemo.Example::correct).count();
        w.printf("%nheld-out exact match: %.2f%% (%d of %d), %d parameters, %s%n", 100 * r.accuracy(), right, r.heldOut().size(),
                r.parameters(), AppSupport.seconds(secs));
        DateDemo.TrafficSummary t = r.traffic();
        if (t != null) {
            w.printf(Locale.ROOT, "traffic   per training step: %,.0f bytes to the device, %,.0f to the host, %.1f blocking waits"
                            + " (the first step: %,d, %,d, %d)%n", t.bytesToDevicePerStep(), t.bytesToHostPerStep(),
                    t.blockingWaitsPerStep(), t.firstStep().bytesToDevice(), t.firstStep().bytesToHost(), t.firstStep().blockingWaits());
            w.printf(Locale.ROOT, "          held-out decoding: %,d bytes to the device, %,d to the host, %d blocking waits%n",
                    t.decoding().bytesToDevice(), t.decoding().bytesToHost(), t.decoding().blockingWaits());
        }
        w.println();
        for (DateDemo.Example e : examples(r.heldOut())) {
            w.printf("  %-34s -> %-10s %s%n", "\"" + e.source() + "\"", e.predicted(), e.correct() ? "ok" : "WRONG, expected " + e.expected());
        }
        Path loss = out.resolve("loss.png"), att = out.resolve("attention.png");
        Charts.lossCurve(loss, "Training loss (cross-entropy per output character)", r.losses(), "loss");
        if (r.attention() != null) {
            List<String> in = new ArrayList<>(), outs = new ArrayList<>();
            for (char c : r.attended().source().toCharArray()) in.add(String.valueOf(c));
            for (char c : r.attended().predicted().toCharArray()) outs.add(String.valueOf(c));
            outs.add("</s>");
            // A model that never emitted </s> (a short run) has one attention row per decoding step and no more.
            if (outs.size() > r.attention().length) outs.subList(r.attention().length, outs.size()).clear();
            double[][] rows = java.util.Arrays.copyOf(r.attention(), outs.size());
            Charts.attention(att, "Attention: \"" + r.attended().source() + "\" -> " + r.attended().predicted(), in, outs, rows);
        }
        w.printf("%nwrote %s and %s%n", loss, att);
        if (json) w.println(json(backendName, r, secs, right));
        w.flush();
        return 0;
    }

    /** The run's summary as one JSON object; traffic fields are null on a backend that keeps no counts. */
    static String json(String backend, DateDemo.Result r, double seconds, long right) {
        DateDemo.TrafficSummary t = r.traffic();
        StringBuilder j = new StringBuilder("{");
        j.append("\"backend\":\"").append(backend).append("\",\"steps\":").append(r.losses().length)
                .append(",\"seconds\":").append(String.format(Locale.ROOT, "%.3f", seconds))
                .append(",\"held_out\":").append(r.heldOut().size()).append(",\"held_out_correct\":").append(right)
                .append(",\"accuracy\":").append(r.accuracy()).append(",\"parameters\":").append(r.parameters())
                .append(",\"final_loss\":").append(r.losses()[r.losses().length - 1]);
        String[] keys = {"step_bytes_to_device", "step_bytes_to_host", "step_blocking_waits", "first_step_bytes_to_device",
                "first_step_bytes_to_host", "first_step_blocking_waits", "decode_bytes_to_device", "decode_bytes_to_host",
                "decode_blocking_waits"};
        Object[] values = t == null ? new Object[keys.length] : new Object[] {t.bytesToDevicePerStep(), t.bytesToHostPerStep(),
                t.blockingWaitsPerStep(), t.firstStep().bytesToDevice(), t.firstStep().bytesToHost(), t.firstStep().blockingWaits(),
                t.decoding().bytesToDevice(), t.decoding().bytesToHost(), t.decoding().blockingWaits()};
        for (int i = 0; i < keys.length; i++) j.append(",\"").append(keys[i]).append("\":").append(values[i] == null ? "null" : values[i]);
        return j.append("}").toString();
    }

    /** Up to 10 held-out examples, one per written form first, then any mistakes. */
    static List<DateDemo.Example> examples(List<DateDemo.Example> all) {
        List<DateDemo.Example> picked = new ArrayList<>();
        Set<String> shapes = new HashSet<>();
        for (DateDemo.Example e : all) {
            // The "shape" of a written date: letters, digits and punctuation collapsed, so each format shows once.
            String shape = e.source().replaceAll("[A-Za-z]+", "a").replaceAll("[0-9]+", "9");
            if (picked.size() < 8 && shapes.add(shape)) picked.add(e);
        }
        int wrong = 0;
        for (DateDemo.Example e : all) if (!e.correct() && !picked.contains(e) && wrong++ < 2) picked.add(e);
        return picked;
    }
}
