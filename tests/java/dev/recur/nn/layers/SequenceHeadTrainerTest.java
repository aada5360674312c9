package dev.recur.nn.layers;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceRows;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SequenceClassifierTrainer} and {@link SequenceTaggerTrainer} on every device backend: the device step (the
 * recurrent network, pooling, output layer, loss, clipping and Adam on device buffers) follows the float64 reference
 * trainer's loss curve for every pooling, bidirectional multi-layer LSTM and GRU, the tagger and the MSE regression;
 * it is bit-identical run to run, moves only the batch in and the loss out, hands its parameters back to the host
 * mirror and uploads declared host writes, refuses bad batches before anything runs and returns every byte of device
 * memory.
 */
class SequenceHeadTrainerTest {
    static final int I = 5, T = 6, B = 4, C = 3, STEPS = 25;
    /** Small enough that the first steps are clipped (checked below), so clipping is part of what is compared. */
    static final double CLIP = 0.1, LR = 0.05;
    static final OptimizerConfig CONFIG = OptimizerConfig.adam(LR).withClipNorm(CLIP);
    /** Each batch's lengths: full, short, one step, in between (the pooling and padding are exercised). */
    static final int[] LENGTHS = {6, 3, 1, 5};

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    /** What a case trains: a classifier (with its pooling, or MSE regression) or a tagger, on one network. */
    enum Kind { CLASSIFY, REGRESS, TAG }

    record Case(String name, Kind kind, RnnConfig rnn, Pooling pooling, int outputs) {
        @Override
        public String toString() {
            return name;
        }
    }

    static RnnConfig lstm2() {
        return RnnConfig.builder(CellType.LSTM, I, 7).layers(2).build();
    }

    static List<Case> cases() {
        RnnConfig biLstm = RnnConfig.builder(CellType.LSTM, I, 6).layers(2).bidirectional(true).build();
        RnnConfig biGru = RnnConfig.builder(CellType.GRU, I, 6).layers(2).bidirectional(true).build();
        return List.of(
                new Case("LSTM x2, LAST", Kind.CLASSIFY, lstm2(), Pooling.LAST, C),
                new Case("LSTM x2, MEAN", Kind.CLASSIFY, lstm2(), Pooling.MEAN, C),
                new Case("LSTM x2, MAX", Kind.CLASSIFY, lstm2(), Pooling.MAX, C),
                new Case("bi-LSTM x2, LAST", Kind.CLASSIFY, biLstm, Pooling.LAST, C),
                new Case("bi-GRU x2, MEAN", Kind.CLASSIFY, biGru, Pooling.MEAN, C),
                new Case("bi-GRU x2, MAX", Kind.CLASSIFY, biGru, Pooling.MAX, C),
                new Case("LSTM x2, LAST, MSE", Kind.REGRESS, lstm2(), Pooling.LAST, 1),
                new Case("bi-GRU x2, MEAN, MSE x2", Kind.REGRESS, biGru, Pooling.MEAN, 2),
                new Case("LSTM x2 tagger", Kind.TAG, lstm2(), null, C),
                new Case("bi-GRU x2 tagger", Kind.TAG, biGru, null, C));
    }

    /** Inputs, labels, real targets and tags of step s: learnable (functions of the inputs), float32-exact inputs. */
    record Batch(Tensor x, int[] labels, double[] targets, int[] tags) {}

    /** Batches cycle through four, so that 25 steps of a tiny model visibly learn them. */
    static Batch batch(int s, int outputs) {
        SplittableRandom r = new SplittableRandom(500 + s % 4);
        Tensor x = Tensor.zeros(T, B, I);
        for (int i = 0; i < x.size(); i++) x.data()[i] = (float) r.nextDouble(-1, 1);
        int[] labels = new int[B], tags = new int[T * B];
        double[] targets = new double[B * outputs];
        for (int b = 0; b < B; b++) {
            double sum = 0;
            for (int t = 0; t < LENGTHS[b]; t++) sum += x.data()[(t * B + b) * I];
            labels[b] = sum > 0.5 ? 2 : sum < -0.5 ? 0 : 1;
            for (int o = 0; o < outputs; o++) targets[b * outputs + o] = (float) (0.5 * sum - 0.25 * o);
        }
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) {
                double v = x.data()[(t * B + b) * I] + (t > 0 ? x.data()[((t - 1) * B + b) * I] : 0);
                // Past each length the tag is junk: the trainer must not count it.
                tags[t * B + b] = t >= LENGTHS[b] ? 99 : v > 0.3 ? 2 : v < -0.3 ? 0 : 1;
            }
        }
        return new Batch(x, labels, targets, tags);
    }

    /** A model of one case and its trainer; closes both. */
    static final class Model implements AutoCloseable {
        final Case c;
        final Parameters params = new Parameters();
        final SequenceClassifier classifier;
        final SequenceTagger tagger;
        final SequenceClassifierTrainer ct;
        final SequenceTaggerTrainer tt;

        Model(Case c, Backend be) {
            this.c = c;
            if (c.kind() == Kind.TAG) {
                classifier = null;
                ct = null;
                tagger = new SequenceTagger(params, "tagger", c.rnn(), c.outputs(), be, 11);
                tt = tagger.trainer(CONFIG);
            } else {
                tagger = null;
                tt = null;
                classifier = new SequenceClassifier(params, "clf", c.rnn(), c.outputs(), c.pooling(), be, 11);
                ct = classifier.trainer(CONFIG);
            }
        }

        double step(int s) {
            Batch b = batch(s, c.outputs());
            return switch (c.kind()) {
                case CLASSIFY -> ct.step(b.x(), LENGTHS, b.labels(), s);
                case REGRESS -> ct.stepRegression(b.x(), LENGTHS, b.targets(), s);
                case TAG -> tt.step(b.x(), LENGTHS, b.tags(), s);
            };
        }

        Parameters parameters() {
            return ct != null ? ct.parameters() : tt.parameters();
        }

        boolean onDevice() {
            return ct != null ? ct.onDevice() : tt.onDevice();
        }

        RecurrentLayer rnn() {
            return classifier != null ? classifier.rnnLayer() : tagger.rnnLayer();
        }

        @Override
        public void close() {
            if (classifier != null) classifier.close();
            else tagger.close();
        }
    }

    static double[] train(Case c, Backend be, int steps) {
        double[] loss = new double[steps];
        try (Model m = new Model(c, be)) {
            for (int s = 0; s < steps; s++) loss[s] = m.step(s);
        }
        return loss;
    }

    /** The reference's first global gradient norm, so the test knows it covers clipping. */
    static double firstNorm(Case c) {
        try (Backend rb = new ReferenceBackend(); Model m = new Model(c, rb)) {
            Batch b = batch(0, c.outputs());
            if (m.classifier != null) {
                try (SequenceClassifier.Pass p = m.classifier.forward(b.x(), LENGTHS, 0)) {
                    Tensor d = c.kind() == Kind.CLASSIFY ? SoftmaxCrossEntropy.compute(p.logits(), b.labels(), -1).dlogits()
                            : MeanSquaredError.compute(p.logits(), Tensor.of(b.targets().clone(), p.logits().shape())).dprediction();
                    m.classifier.backward(p, d);
                }
            } else {
                int[] tags = b.tags().clone();
                for (int t = 0; t < T; t++) for (int i = 0; i < B; i++) if (t >= LENGTHS[i]) tags[t * B + i] = -1;
                try (SequenceTagger.Pass p = m.tagger.forward(b.x(), LENGTHS, 0)) {
                    m.tagger.backward(p, SoftmaxCrossEntropy.compute(p.logits(), tags, -1).dlogits());
                }
            }
            return GradientClipping.globalNorm(m.params);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void lossCurvesFollowTheFloat64Reference(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        List<String> report = new ArrayList<>();
        for (Case c : cases()) {
            double norm = firstNorm(c);
            assertTrue(norm > CLIP, c + ": the first step must be clipped for the test to cover clipping: norm " + norm);
            double[] ref;
            try (Backend rb = new ReferenceBackend()) {
                ref = train(c, rb, STEPS);
            }
            double[] dev = train(c, be, STEPS);
            // The tolerance of the language-model trainer's parity test (1e-5 relative), over 25 clipped Adam steps.
            double worst = TrainTestSupport.assertLossCurveFollows(backend + " " + c, ref, dev, 1e-5);
            assertTrue(mean(dev, STEPS - 4, STEPS) < 0.9 * mean(dev, 0, 4), backend + " " + c + ": the loss did not fall: "
                    + Arrays.toString(dev));
            report.add(String.format("%s: max rel diff %.3g, loss %.4f -> %.4f", c, worst, dev[0], dev[STEPS - 1]));
        }
        report.forEach(l -> System.out.println(backend + " " + l));
    }

    static double mean(double[] a, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) s += a[i];
        return s / (to - from);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void trainingIsBitIdenticalRunToRun(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (Case c : List.of(cases().get(2), cases().get(3), cases().get(6), cases().get(9))) {
            double[][] loss = new double[2][];
            Map<String, Tensor>[] params = new Map[2];
            for (int run = 0; run < 2; run++) {
                try (Model m = new Model(c, be)) {
                    loss[run] = new double[5];
                    for (int s = 0; s < 5; s++) loss[run][s] = m.step(s);
                    params[run] = m.parameters().snapshot();
                }
            }
            assertArrayEquals(loss[0], loss[1], 0.0, backend + " " + c + ": losses of two runs");
            for (String n : params[0].keySet()) {
                assertArrayEquals(params[0].get(n).data(), params[1].get(n).data(), 0.0, backend + " " + c + ": " + n + " after two runs");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void aStepUploadsTheBatchAndDownloadsTheLoss(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (Case c : List.of(cases().get(1), cases().get(3), cases().get(6), cases().get(9))) {
            try (Model m = new Model(c, be)) {
                assertTrue(m.onDevice(), backend + ": expected a device trainer");
                m.step(0);   // the first step allocates its scratch; the weights went up when the trainer opened
                long x = 4L * T * B * I, lengths = 4L * B;
                long labels = switch (c.kind()) {
                    case CLASSIFY -> 4L * B;
                    case REGRESS -> 4L * B * c.outputs();
                    case TAG -> 4L * T * B;
                };
                for (int s = 1; s < 4; s++) {
                    Traffic before = be.traffic();
                    m.step(s);
                    Traffic d = be.traffic().minus(before);
                    assertEquals(x + lengths + labels, d.bytesToDevice(), backend + " " + c + ": bytes up at step " + s
                            + " (x " + x + ", lengths " + lengths + ", labels/targets " + labels + ")");
                    assertEquals(Float.BYTES, d.bytesToHost(), backend + " " + c + ": bytes down at step " + s);
                    assertTrue(d.blockingWaits() <= 2, backend + " " + c + ": " + d.blockingWaits() + " blocking waits at step " + s);
                    if (s == 3) System.out.printf("%s %s: per step %d bytes up, %d down, %d blocking waits%n", backend, c,
                            d.bytesToDevice(), d.bytesToHost(), d.blockingWaits());
                }
                // Inputs already on the device: only the lengths and the labels cross.
                Batch b = batch(4, c.outputs());
                try (DeviceTensor dx = DeviceTensor.of(be, b.x())) {
                    Traffic before = be.traffic();
                    switch (c.kind()) {
                        case CLASSIFY -> m.ct.step(dx, LENGTHS, b.labels(), 4);
                        case REGRESS -> m.ct.stepRegression(dx, LENGTHS, b.targets(), 4);
                        case TAG -> m.tt.step(dx, LENGTHS, b.tags(), 4);
                    }
                    Traffic d = be.traffic().minus(before);
                    assertEquals(lengths + labels, d.bytesToDevice(), backend + " " + c + ": bytes up with x on the device");
                    assertEquals(Float.BYTES, d.bytesToHost(), backend + " " + c + ": bytes down with x on the device");
                    assertTrue(d.blockingWaits() <= 2, backend + " " + c + ": blocking waits with x on the device");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void aDeviceTensorInputTrainsAsTheHostTensorDoes(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        Case c = cases().get(4);
        double[] host = train(c, be, 3), dev = new double[3];
        try (Model m = new Model(c, be)) {
            for (int s = 0; s < 3; s++) {
                Batch b = batch(s, c.outputs());
                try (DeviceTensor dx = DeviceTensor.of(be, b.x())) {
                    dev[s] = m.ct.step(dx, LENGTHS, b.labels(), s);
                }
            }
        }
        assertArrayEquals(host, dev, 0.0, backend + ": a DeviceTensor x against the same x from the host");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void theHostMirrorIsTheDeviceValuesAndDeclaredHostWritesGoUp(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        for (Case c : List.of(cases().get(3), cases().get(9))) {
            try (Model m = new Model(c, be)) {
                Map<String, Tensor> start = m.params.snapshot();
                for (int s = 0; s < 3; s++) m.step(s);
                Parameters p = m.parameters();
                for (String n : start.keySet()) {
                    assertTrue(!Arrays.equals(start.get(n).data(), p.value(n).data()), backend + " " + c + ": " + n + " unchanged on the host");
                }
                // The recurrent weights in the mirror are the device's, exactly.
                Map<String, Tensor> onDevice = m.rnn().rnn().weightSpace().toTensors();
                for (Map.Entry<String, Tensor> e : onDevice.entrySet()) {
                    assertArrayEquals(e.getValue().data(), p.value(m.rnn().prefix() + "." + e.getKey()).data(), 0.0,
                            backend + " " + c + ": " + e.getKey() + " mirror vs device");
                }
                // The whole mirror on the reference gives the loss the device computes for the next step (before it updates).
                double hostLoss;
                try (Backend rb = new ReferenceBackend(); Model r = new Model(c, rb)) {
                    r.params.copyFrom(p.snapshot());
                    hostLoss = r.step(3);
                }
                assertEquals(hostLoss, m.step(3), 1e-5 * Math.max(1, hostLoss), backend + " " + c + ": the mirror's loss vs the device's");
                // A declared host write goes up before the next step: a zero output layer predicts uniformly.
                String out = c.kind() == Kind.TAG ? "tagger.out" : "clf.out";
                Arrays.fill(p.value(out + ".weight").data(), 0.0);
                Arrays.fill(p.value(out + ".bias").data(), 0.0);
                p.markChanged();
                assertEquals(Math.log(C), m.step(4), 1e-6, backend + " " + c + ": the step did not see the host write");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badBatchesAreRefusedBeforeAnythingRuns(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        Case c = cases().get(1);
        try (Model m = new Model(c, be); Model tag = new Model(cases().get(8), be)) {
            Batch b = batch(0, C);
            Traffic before = be.traffic();
            refused("labels: entry 2 must be in [0, 3) (classes), got 3", () -> m.ct.step(b.x(), LENGTHS, new int[] {0, 1, 3, 0}, 0));
            refused("labels: expected 4 entries (B), got 3", () -> m.ct.step(b.x(), LENGTHS, new int[] {0, 1, 2}, 0));
            refused("lengths: entry 1 must be in [1, 6] (T), got 7", () -> m.ct.step(b.x(), new int[] {6, 7, 1, 1}, b.labels(), 0));
            refused("lengths: entry 0 must be in [1, 6] (T), got 0", () -> m.ct.step(b.x(), new int[] {0, 1, 1, 1}, b.labels(), 0));
            refused("x: expected a tensor [T, B, 5] with T, B >= 1, got [6, 4, 4]",
                    () -> m.ct.step(Tensor.zeros(T, B, I - 1), LENGTHS, b.labels(), 0));
            refused("targets: expected 12 values (B * outputs), got 4", () -> m.ct.stepRegression(b.x(), LENGTHS, new double[4], 0));
            refused("targets: value 1 must be finite, got NaN",
                    () -> m.ct.stepRegression(b.x(), LENGTHS, new double[] {0, Double.NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0));
            int[] tags = b.tags().clone();
            tags[5] = 3;   // step 1 of sequence 1 (length 3): counted, so checked
            refused("tags: entry 5 (step 1 of sequence 1) must be in [0, 3) (classes) or -1, got 3",
                    () -> tag.tt.step(b.x(), LENGTHS, tags, 0));
            refused("tags: expected 24 entries (T * B), got 4", () -> tag.tt.step(b.x(), LENGTHS, new int[4], 0));
            try (DeviceTensor small = DeviceTensor.zeros(be, T, B, I + 1)) {
                refused("x: expected a device tensor [T, B, 5]", () -> m.ct.step(small, LENGTHS, b.labels(), 0));
            }
            assertEquals(0, be.traffic().minus(before).bytesToDevice(), backend + ": a refused step uploaded something");
            assertEquals(0, m.ct.steps(), backend + ": a refused step counted");
            IllegalStateException twice = assertThrows(IllegalStateException.class, () -> m.classifier.trainer(CONFIG));
            assertTrue(twice.getMessage().contains("already has an open trainer"), twice.getMessage());
            m.ct.close();
            refused("config: must not be null", () -> m.classifier.trainer(null));
        }
        try (Backend rb = new ReferenceBackend(); Model r = new Model(c, rb); DeviceTensor dx = DeviceTensor.zeros(be, T, B, I)) {
            refused("x: a device tensor needs a trainer on a device backend", () -> r.ct.step(dx, LENGTHS, new int[B], 0));
        }
    }

    static void refused(String message, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void deviceMemoryReturnsAfterTrainingAndAfterAFailedStep(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        for (Case c : List.of(cases().get(2), cases().get(3), cases().get(7), cases().get(9))) {
            try (Model m = new Model(c, be)) {
                m.step(0);
                assertThrows(IllegalArgumentException.class, () -> {
                    if (m.ct != null) m.ct.step(batch(1, C).x(), new int[] {9, 1, 1, 1}, new int[B], 1);
                    else m.tt.step(batch(1, C).x(), new int[] {9, 1, 1, 1}, new int[T * B], 1);
                });
                // Another batch shape: new scratch, the old freed.
                Tensor x = Tensor.zeros(T - 2, B + 1, I);
                int[] len = {4, 4, 2, 1, 3};
                switch (c.kind()) {
                    case CLASSIFY -> m.ct.step(x, len, new int[B + 1], 2);
                    case REGRESS -> m.ct.stepRegression(x, len, new double[(B + 1) * c.outputs()], 2);
                    case TAG -> m.tt.step(x, len, new int[(T - 2) * (B + 1)], 2);
                }
                m.step(3);
                // Closing the model closes its open trainer.
            }
            assertEquals(start, be.memoryInUse(), backend + " " + c + ": device memory in use after closing the model");
        }
        // A trainer closed on its own leaves the model usable, and a closed trainer refuses to step.
        try (Model m = new Model(cases().get(0), be)) {
            m.step(0);
            m.ct.close();
            assertThrows(IllegalStateException.class, () -> m.step(1));
            try (SequenceClassifierTrainer again = m.classifier.trainer(CONFIG)) {
                Batch b = batch(1, C);
                again.step(b.x(), LENGTHS, b.labels(), 1);
            }
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after reopening a trainer");
    }
}
