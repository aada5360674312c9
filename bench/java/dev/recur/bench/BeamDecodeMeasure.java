package dev.recur.bench;

import dev.recur.apps.CharVocab;
import dev.recur.apps.DateDemo;
import dev.recur.apps.DateFormats;
import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.nn.decode.BeamSearch;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.seq2seq.Seq2Seq;
import dev.recur.nn.seq2seq.Seq2SeqBatch;
import dev.recur.nn.seq2seq.Seq2SeqTrainer;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Beam search over the date demo's 1,000 held-out sources (not run by CI): trains the demo's model ({@code ./recur demo}'s
 * settings and data, {@code --steps}), then decodes the held-out set with {@link BeamSearch} on the host
 * ({@code Seq2Seq.stepModel}) and on the device ({@code Seq2Seq.beamSearchTokens} and {@code beamSearch}), printing
 * each path's wall time (best of {@code --repeat}), bytes each way and blocking waits, and the exact-match accuracy.
 *
 * <pre>
 * java -cp target/benchmarks.jar dev.recur.bench.BeamDecodeMeasure [--backend opencl] [--steps 400] [--width 4] [--repeat 2]
 * </pre>
 */
public final class BeamDecodeMeasure {
    private BeamDecodeMeasure() {}

    public static void main(String[] args) {
        String backendName = "opencl";
        int steps = 400, width = 4, repeat = 2;
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--backend" -> backendName = args[i + 1];
                case "--steps" -> steps = Integer.parseInt(args[i + 1]);
                case "--width" -> width = Integer.parseInt(args[i + 1]);
                case "--repeat" -> repeat = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        DateDemo demo = new DateDemo(DateDemo.Settings.defaults(steps, 1));
        DateDemo.Settings st = demo.settings();
        CharVocab source = demo.sourceVocab(), target = demo.targetVocab();
        SplittableRandom data = new SplittableRandom(st.seed());
        List<String> heldOut = new ArrayList<>(), expected = new ArrayList<>();
        Set<String> keys = new HashSet<>();
        while (heldOut.size() < st.heldOut()) {
            LocalDate d = DateFormats.randomDate(data);
            String s = DateFormats.randomWriting(d, data);
            if (keys.add(s)) {
                heldOut.add(s);
                expected.add(DateFormats.ISO.format(d));
            }
        }
        try (Backend backend = Backends.open(backendName); Seq2Seq model = Seq2Seq.create(demo.modelConfig(), backend, data.nextLong())) {
            Adam adam = new Adam(st.lr());
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, adam, SamplingSchedule.constant(1), 5.0, st.seed());
            long t0 = System.nanoTime();
            for (int step = 0; step < steps; step++) {
                List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
                while (src.size() < st.batch()) {
                    LocalDate d = DateFormats.randomDate(data);
                    String s = DateFormats.randomWriting(d, data);
                    if (keys.contains(s)) continue;
                    src.add(source.encode(s));
                    tgt.add(target.encode(DateFormats.ISO.format(d)));
                }
                if (step >= steps / 2) adam.setLearningRate(st.lr() * (1 - 0.95 * (step - steps / 2) / (double) Math.max(1, steps - steps / 2)));
                trainer.step(Seq2SeqBatch.of(src, tgt, CharVocab.PAD, CharVocab.EOS));
            }
            System.out.printf(Locale.ROOT, "%s: trained %d steps in %.1f s; runs on the device: %s%n", backendName, steps,
                    (System.nanoTime() - t0) / 1e9, model.runsOnDevice());
            List<int[]> encoded = heldOut.stream().map(source::encode).toList();
            BeamSearch search = new BeamSearch(width, 0, 12);
            measure("greedy tokens (device)", backend, repeat, target, expected, () -> model.greedyTokens(encoded, 12));
            measure("beam " + width + " host (BeamSearch over stepModel)", backend, repeat, target, expected,
                    () -> search.decode(model.stepModel(encoded), CharVocab.BOS, CharVocab.EOS));
            measure("beam " + width + " device, tokens", backend, repeat, target, expected, () -> model.beamSearchTokens(encoded, search));
            measure("beam " + width + " device, details", backend, repeat, target, expected, () -> model.beamSearch(encoded, search));
        }
    }

    private static void measure(String what, Backend backend, int repeat, CharVocab target, List<String> expected, Supplier<Decoded> run) {
        long best = Long.MAX_VALUE;
        Traffic traffic = null;
        Decoded d = null;
        for (int i = 0; i < repeat; i++) {
            Traffic before = backend instanceof DeviceBackend db ? db.traffic() : null;
            long t = System.nanoTime();
            d = run.get();
            best = Math.min(best, System.nanoTime() - t);
            if (before != null) traffic = ((DeviceBackend) backend).traffic().minus(before);
        }
        int correct = 0;
        for (int i = 0; i < expected.size(); i++) if (target.decode(d.tokens().get(i)).equals(expected.get(i))) correct++;
        System.out.printf(Locale.ROOT, "  %-42s %8.1f ms  %s  exact match %.1f%%%n", what, best / 1e6,
                traffic == null ? "" : String.format(Locale.ROOT, "%,d B up, %,d B down, %d waits", traffic.bytesToDevice(),
                        traffic.bytesToHost(), traffic.blockingWaits()), 100.0 * correct / expected.size());
    }
}
