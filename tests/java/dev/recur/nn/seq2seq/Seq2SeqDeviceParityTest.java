package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.device.TrainTestSupport;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.GradientClipping;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The same seq2seq training run (same seed, data and optimizer) on every device backend follows the reference's
 * loss curve for its first steps, within float32 tolerance, for both attention styles. Backends that are not
 * available here are skipped, except OpenCL when {@code recur.ci} is {@code true}, which fails.
 */
class Seq2SeqDeviceParityTest {
    static final int PAD = 0, BOS = 1, EOS = 2, V = 11, STEPS = 6;

    static Stream<Arguments> cases() {
        List<Arguments> list = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            if (p.name().equals("reference")) continue;
            for (AttentionStyle s : new AttentionStyle[] {AttentionStyle.LUONG, AttentionStyle.BAHDANAU}) list.add(Arguments.of(p.name(), s));
        }
        return list.stream();
    }

    static Backend open(String name) {
        BackendProvider p = Backends.provider(name);
        BackendProvider.Availability a = p.probe();
        if (!a.available()) {
            if (name.equals("opencl") && "true".equals(System.getProperty("recur.ci"))) {
                fail("opencl unavailable with recur.ci=true (CI installs PoCL): " + a.detail());
            }
            Assumptions.abort(name + " unavailable: " + a.detail());
        }
        return p.open();
    }

    static double[] train(Backend be, AttentionStyle style) {
        Seq2SeqConfig cfg = Seq2SeqConfig.builder(V, V).embedding(8).encoder(CellType.LSTM, 8, 2, true).decoder(CellType.GRU, 12, 2)
                .attention(style, style == AttentionStyle.LUONG ? AttentionScore.GENERAL : AttentionScore.ADDITIVE).attentionSize(6)
                .tokens(PAD, BOS, EOS).build();
        SplittableRandom rnd = new SplittableRandom(77);
        double[] losses = new double[STEPS];
        try (Seq2Seq m = Seq2Seq.create(cfg, be, 5)) {
            Adam adam = new Adam(0.01);
            for (int step = 0; step < STEPS; step++) {
                List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    int[] s = rnd.ints(rnd.nextInt(2, 7), 3, V).toArray();
                    src.add(s);
                    tgt.add(rnd.ints(rnd.nextInt(1, 5), 3, V).toArray());
                }
                m.parameters().zeroGrad();
                losses[step] = m.forwardBackward(Seq2SeqBatch.of(src, tgt, PAD, EOS), step % 2 == 0 ? 1.0 : 0.5, step).loss();
                GradientClipping.clipByGlobalNorm(m.parameters(), 1.0);
                adam.step(m.parameters());
            }
        }
        return losses;
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void trainingLossCurveFollowsTheReference(String backend, AttentionStyle style) {
        double[] ref;
        try (Backend be = new ReferenceBackend()) {
            ref = train(be, style);
        }
        double[] dev;
        try (Backend be = open(backend)) {
            dev = train(be, style);
        }
        TrainTestSupport.assertLossCurveFollows(backend + " " + style, ref, dev, 1e-5);
    }
}
