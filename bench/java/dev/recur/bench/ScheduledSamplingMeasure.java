package dev.recur.bench;

import dev.recur.apps.CharVocab;
import dev.recur.apps.DateDemo;
import dev.recur.apps.DateFormats;
import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.seq2seq.Seq2Seq;
import dev.recur.nn.seq2seq.Seq2SeqBatch;
import dev.recur.nn.seq2seq.Seq2SeqTrainer;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.SamplingSchedule;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Scheduled sampling steps of the date demo's model (not run by CI): {@code --steps} training steps at teacher-forcing
 * probability {@code --tf} (batch 32) through {@link Seq2SeqTrainer} (on a device backend, the device step:
 * {@code argmax_rows} + {@code scheduled_feed} per decoder step) and through the host path the trainer took before
 * (forward and backward in float64 on the host around the device's recurrent layers, host clipping and Adam), printing
 * each path's steps per second and, per step, bytes each way and blocking waits.
 *
 * <pre>
 * java -cp target/benchmarks.jar dev.recur.bench.ScheduledSamplingMeasure [--backend opencl] [--steps 30] [--tf 0.5]
 * </pre>
 */
public final class ScheduledSamplingMeasure {
    private ScheduledSamplingMeasure() {}

    public static void main(String[] args) {
        String backendName = "opencl";
        int steps = 30;
        double tf = 0.5;
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--backend" -> backendName = args[i + 1];
                case "--steps" -> steps = Integer.parseInt(args[i + 1]);
                case "--tf" -> tf = Double.parseDouble(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        DateDemo demo = new DateDemo(DateDemo.Settings.defaults(steps, 1));
        DateDemo.Settings st = demo.settings();
        CharVocab source = demo.sourceVocab(), target = demo.targetVocab();
        SplittableRandom data = new SplittableRandom(st.seed());
        List<Seq2SeqBatch> batches = new ArrayList<>();
        for (int step = 0; step < steps; step++) {
            List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
            while (src.size() < st.batch()) {
                LocalDate d = DateFormats.randomDate(data);
                src.add(source.encode(DateFormats.randomWriting(d, data)));
                tgt.add(target.encode(DateFormats.ISO.format(d)));
            }
            batches.add(Seq2SeqBatch.of(src, tgt, CharVocab.PAD, CharVocab.EOS));
        }
        try (Backend backend = Backends.open(backendName)) {
            for (boolean device : new boolean[] {true, false}) {
                try (Seq2Seq model = Seq2Seq.create(demo.modelConfig(), backend, 7)) {
                    Adam adam = new Adam(st.lr());
                    Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, adam, SamplingSchedule.constant(tf), 5.0, st.seed());
                    Traffic later = Traffic.ZERO;
                    double first = 0, last = 0;
                    long t0 = 0;
                    for (int step = 0; step < steps; step++) {
                        if (step == 1) t0 = System.nanoTime();
                        Traffic before = backend instanceof DeviceBackend db ? db.traffic() : Traffic.ZERO;
                        double loss;
                        if (device) {
                            loss = trainer.step(batches.get(step)).loss();
                        } else {
                            Parameters p = model.parameters();
                            p.zeroGrad();
                            loss = model.forwardBackward(batches.get(step), tf, st.seed() + step).loss();
                            GradientClipping.clip(p, trainer.optimizerConfig());
                            adam.step(p);
                        }
                        if (step == 0) first = loss;
                        last = loss;
                        if (step > 0 && backend instanceof DeviceBackend db) {
                            Traffic d = db.traffic().minus(before);
                            later = new Traffic(later.bytesToDevice() + d.bytesToDevice(), later.bytesToHost() + d.bytesToHost(),
                                    later.blockingWaits() + d.blockingWaits());
                        }
                    }
                    double secs = (System.nanoTime() - t0) / 1e9;
                    int n = Math.max(1, steps - 1);
                    System.out.printf(Locale.ROOT, "%s %s, tf %.2f: %.1f steps/s; per step %.1f KB up, %.1f KB down, %.1f waits;"
                                    + " loss %.4f -> %.4f%n", backendName, device ? "device step" : "host path", tf, n / secs,
                            later.bytesToDevice() / 1e3 / n, later.bytesToHost() / 1e3 / n, later.blockingWaits() / (double) n, first, last);
                }
            }
        }
    }
}
