package dev.recur.apps;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.Traffic;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.seq2seq.AttentionStyle;
import dev.recur.nn.seq2seq.Bridge;
import dev.recur.nn.seq2seq.Seq2Seq;
import dev.recur.nn.seq2seq.Seq2SeqBatch;
import dev.recur.nn.seq2seq.Seq2SeqConfig;
import dev.recur.nn.seq2seq.Seq2SeqTrainer;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The date-normalisation demo: a character-level seq2seq model with Luong attention (bidirectional GRU
 * encoder, GRU decoder) learns to turn dates written by people ({@link DateFormats}) into ISO
 * {@code yyyy-MM-dd}. Training batches are drawn fresh each step from a seeded generator; a held-out set of
 * written dates is set aside first and never trained on. Everything is seeded: the same settings and seed
 * give the same model on the same backend.
 */
public final class DateDemo {
    /** Target length: "yyyy-MM-dd". */
    static final int ISO_LENGTH = 10;

    /**
     * @param steps    training steps (one batch each)
     * @param batch    examples per step
     * @param heldOut  held-out examples for the final exact-match accuracy
     * @param seed     seeds the data, the initial weights and dropout
     * @param lr       Adam's learning rate for the first half; it then decays linearly to lr/20
     * @param hidden   encoder hidden size per direction; the decoder has twice this
     */
    public record Settings(int steps, int batch, int heldOut, long seed, double lr, int embedding, int hidden) {
        public Settings {
            if (steps <= 0) throw new IllegalArgumentException("steps: expected > 0, got " + steps);
            if (batch <= 0) throw new IllegalArgumentException("batch: expected > 0, got " + batch);
            if (heldOut <= 0) throw new IllegalArgumentException("heldOut: expected > 0, got " + heldOut);
            if (!(lr > 0)) throw new IllegalArgumentException("lr: expected > 0, got " + lr);
            if (embedding <= 0) throw new IllegalArgumentException("embedding: expected > 0, got " + embedding);
            if (hidden <= 0) throw new IllegalArgumentException("hidden: expected > 0, got " + hidden);
        }

        /** The demo's model and optimiser: batch 32, 1000 held out, Adam 0.01, embedding 16, encoder 32 per direction. */
        public static Settings defaults(int steps, long seed) {
            return new Settings(steps, 32, 1000, seed, 0.01, 16, 32);
        }

        public Settings withHeldOut(int n) {
            return new Settings(steps, batch, n, seed, lr, embedding, hidden);
        }
    }

    /**
     * Called after every training step with the batch's loss and token accuracy (NaN for a step on the device, which
     * reads back only the loss).
     */
    @FunctionalInterface
    public interface Progress {
        void step(int step, double loss, double tokenAccuracy);
    }

    /** A held-out example: the written date, the expected ISO form, and what the model produced. */
    public record Example(String source, String expected, String predicted) {
        public boolean correct() {
            return expected.equals(predicted);
        }
    }

    /**
     * @param losses      training loss per step
     * @param accuracies  training token accuracy per step (NaN where the step ran on the device)
     * @param heldOut     held-out examples with predictions (greedy decoding)
     * @param accuracy    held-out exact-match accuracy
     * @param attention   attention weights {@code [output chars + 1][source chars]} of {@code attended}
     *                    (the last row is the end token)
     * @param attended    the example whose attention is reported
     */
    public record Result(double[] losses, double[] accuracies, List<Example> heldOut, double accuracy, double[][] attention,
                         Example attended, long parameters, TrafficSummary traffic) {}

    /**
     * What crossed between host and device ({@link Traffic}): the first training step (which uploads the weights),
     * the mean of every later step, and the held-out decoding as a whole. Null on a backend that keeps no counts.
     *
     * @param laterSteps the training steps after the first, summed; divide by {@code steps - 1} for a step's share
     */
    public record TrafficSummary(Traffic firstStep, Traffic laterSteps, int steps, Traffic decoding) {
        /** Bytes to the device per training step after the first. */
        public double bytesToDevicePerStep() {
            return steps > 1 ? laterSteps.bytesToDevice() / (double) (steps - 1) : 0;
        }

        /** Bytes to the host per training step after the first. */
        public double bytesToHostPerStep() {
            return steps > 1 ? laterSteps.bytesToHost() / (double) (steps - 1) : 0;
        }

        /** Blocking host waits per training step after the first. */
        public double blockingWaitsPerStep() {
            return steps > 1 ? laterSteps.blockingWaits() / (double) (steps - 1) : 0;
        }
    }

    /** The backend's running traffic count, or null where it keeps none (the reference). */
    private static Traffic traffic(Backend backend) {
        if (!(backend instanceof DeviceBackend db)) return null;
        try {
            return db.traffic();
        } catch (UnsupportedOperationException e) {
            return null;
        }
    }

    private final Settings settings;
    private final CharVocab source = new CharVocab(DateFormats.sourceAlphabet());
    private final CharVocab target = new CharVocab(DateFormats.targetAlphabet());

    public DateDemo(Settings settings) {
        if (settings == null) throw new IllegalArgumentException("settings: must not be null");
        this.settings = settings;
    }

    public Settings settings() {
        return settings;
    }

    public CharVocab sourceVocab() {
        return source;
    }

    public CharVocab targetVocab() {
        return target;
    }

    public Seq2SeqConfig modelConfig() {
        return Seq2SeqConfig.builder(source.size(), target.size()).embedding(settings.embedding())
                .encoder(CellType.GRU, settings.hidden(), 1, true).decoder(CellType.GRU, 2 * settings.hidden(), 1)
                .attention(AttentionStyle.LUONG, AttentionScore.DOT).bridge(Bridge.LINEAR_TANH)
                .tokens(CharVocab.PAD, CharVocab.BOS, CharVocab.EOS).build();
    }

    /** Trains on {@code backend} and evaluates on the held-out set. */
    public Result run(Backend backend, Progress progress) {
        SplittableRandom data = new SplittableRandom(settings.seed());
        List<String> heldOutSources = new ArrayList<>();
        List<String> heldOutTargets = new ArrayList<>();
        Set<String> heldOutKeys = new HashSet<>();
        while (heldOutSources.size() < settings.heldOut()) {
            LocalDate d = DateFormats.randomDate(data);
            String s = DateFormats.randomWriting(d, data);
            if (heldOutKeys.add(s)) {
                heldOutSources.add(s);
                heldOutTargets.add(DateFormats.ISO.format(d));
            }
        }
        double[] losses = new double[settings.steps()];
        double[] accs = new double[settings.steps()];
        try (Seq2Seq model = Seq2Seq.create(modelConfig(), backend, data.nextLong())) {
            Adam adam = new Adam(settings.lr());
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, adam, SamplingSchedule.constant(1), 5.0, settings.seed());
            int half = settings.steps() / 2;
            Traffic first = null, later = Traffic.ZERO;
            for (int step = 0; step < settings.steps(); step++) {
                List<int[]> src = new ArrayList<>(settings.batch()), tgt = new ArrayList<>(settings.batch());
                while (src.size() < settings.batch()) {
                    LocalDate d = DateFormats.randomDate(data);
                    String s = DateFormats.randomWriting(d, data);
                    if (heldOutKeys.contains(s)) continue;
                    src.add(source.encode(s));
                    tgt.add(target.encode(DateFormats.ISO.format(d)));
                }
                if (step >= half) {
                    // Linear decay to lr/20 settles Adam's noisy phase into a sharp final model.
                    double f = (step - half) / (double) Math.max(1, settings.steps() - half);
                    adam.setLearningRate(settings.lr() * (1 - 0.95 * f));
                }
                Seq2SeqBatch batch = Seq2SeqBatch.of(src, tgt, CharVocab.PAD, CharVocab.EOS);
                Traffic before = traffic(backend);
                Seq2Seq.Loss loss = trainer.step(batch);
                if (before != null) {
                    Traffic d = traffic(backend).minus(before);
                    if (step == 0) first = d;
                    else later = new Traffic(later.bytesToDevice() + d.bytesToDevice(), later.bytesToHost() + d.bytesToHost(),
                            later.blockingWaits() + d.blockingWaits());
                }
                losses[step] = loss.loss();
                accs[step] = loss.tokenAccuracy();
                if (progress != null) progress.step(step, loss.loss(), loss.tokenAccuracy());
            }
            List<int[]> encoded = heldOutSources.stream().map(source::encode).toList();
            Traffic beforeDecoding = traffic(backend);
            Decoded dec = model.greedyTokens(encoded, ISO_LENGTH + 2);
            TrafficSummary summary = beforeDecoding == null ? null
                    : new TrafficSummary(first, later, settings.steps(), traffic(backend).minus(beforeDecoding));
            List<Example> examples = new ArrayList<>();
            int correct = 0;
            for (int i = 0; i < encoded.size(); i++) {
                Example e = new Example(heldOutSources.get(i), heldOutTargets.get(i), target.decode(dec.tokens().get(i)));
                if (e.correct()) correct++;
                examples.add(e);
            }
            // The heat map shows a long written form with names and an ordinal, the most interesting alignment.
            int pick = 0;
            for (int i = 0; i < examples.size(); i++) {
                if (examples.get(i).source().startsWith("the ") && examples.get(i).correct()) {
                    pick = i;
                    break;
                }
            }
            // The picture's attention: the picked example decoded again alone, asking for its weights.
            Decoded picked = model.greedy(List.of(encoded.get(pick)), ISO_LENGTH + 2);
            double[][] att = picked.attention() == null ? null : trim(picked.attention().get(0), heldOutSources.get(pick).length());
            return new Result(losses, accs, List.copyOf(examples), correct / (double) examples.size(), att, examples.get(pick),
                    model.parameters().count(), summary);
        }
    }

    private static double[][] trim(double[][] rows, int t) {
        double[][] out = new double[rows.length][];
        for (int i = 0; i < rows.length; i++) out[i] = Arrays.copyOf(rows[i], t);
        return out;
    }
}
