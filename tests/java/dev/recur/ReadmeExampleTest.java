package dev.recur;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.nn.RnnInput;
import dev.recur.nn.decode.BeamSearch;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.RecurrentLayer;
import dev.recur.nn.seq2seq.AttentionStyle;
import dev.recur.nn.seq2seq.Seq2Seq;
import dev.recur.nn.seq2seq.Seq2SeqBatch;
import dev.recur.nn.seq2seq.Seq2SeqConfig;
import dev.recur.nn.seq2seq.Seq2SeqTrainer;
import dev.recur.nn.train.Adam;
import dev.recur.nn.train.SamplingSchedule;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The two Java examples of README.md, verbatim between the markers, so the README stays true. */
class ReadmeExampleTest {

    @Test
    void bidirectionalLstmForwardBackwardAdam() {
        double before, after;
        int[] dxShape;
        // README-EXAMPLE-1-BEGIN
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 32, 64).layers(2).bidirectional(true).build();
        Parameters params = new Parameters();                  // named weights + gradients, PyTorch names
        try (Backend backend = Backends.openBest();            // cuda → opencl → cpu → reference
             RecurrentLayer lstm = new RecurrentLayer(params, "lstm", cfg, backend, 42)) {
            Tensor x = Tensor.of(new SplittableRandom(1).doubles(20 * 8 * 32, -1, 1).toArray(),
                    20, 8, 32);                                 // [T, B, I], time-major
            int[] lengths = {20, 17, 9, 20, 3, 11, 20, 1};      // variable lengths, no repacking
            try (RnnOutput out = lstm.forwardTraining(RnnInput.of(x).withLengths(lengths), 7)) {
                Tensor dy = out.y().copy();                     // d(0.5*|y|^2)/dy = y
                RnnGradients g = lstm.backward(out, dy, null, null); // dx, dh0, dc0; weight grads → params
                before = sumSquares(out.y());
                dxShape = g.dx().shape();
            }
            new Adam(1e-2).step(params);                        // the next forward re-uploads the weights
            try (RnnOutput out = lstm.forward(RnnInput.of(x).withLengths(lengths))) {
                after = sumSquares(out.y());
            }
        }
        // README-EXAMPLE-1-END
        assertArrayEquals(new int[] {20, 8, 32}, dxShape);
        assertNotEquals(before, after, "an optimizer step changes the output");
    }

    private static double sumSquares(Tensor t) {
        double s = 0;
        for (double v : t.data()) s += v * v;
        return s;
    }

    @Test
    void seq2seqWithAttentionAndBeamSearch() {
        int PAD = 0, BOS = 1, EOS = 2;                         // tokens 3..12 are the digits 0..9
        SplittableRandom rnd = new SplittableRandom(5);
        List<int[]> src = new ArrayList<>(), tgt = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            int[] s = rnd.ints(3 + rnd.nextInt(3), 3, 13).toArray();
            int[] r = new int[s.length];
            for (int j = 0; j < s.length; j++) r[j] = s[s.length - 1 - j];
            src.add(s);
            tgt.add(r);
        }
        double first = Double.NaN, last = Double.NaN;
        Decoded out;
        // README-EXAMPLE-2-BEGIN
        Seq2SeqConfig cfg = Seq2SeqConfig.builder(13, 13).embedding(16)
                .encoder(CellType.GRU, 32, 1, true).decoder(CellType.GRU, 64, 1)
                .attention(AttentionStyle.LUONG, AttentionScore.DOT).tokens(PAD, BOS, EOS).build();
        try (Backend backend = Backends.openBest(); Seq2Seq model = Seq2Seq.create(cfg, backend, 42)) {
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, new Adam(0.01),
                    SamplingSchedule.constant(1.0), 5.0, 42);      // teacher forcing, clip at norm 5
            for (int step = 0; step < 40; step++) {
                double loss = trainer.step(Seq2SeqBatch.of(src, tgt, PAD, EOS)).loss();
                if (step == 0) first = loss;
                last = loss;
            }
            out = model.beamSearch(src.subList(0, 4), new BeamSearch(4, 0.6, 10));
        }
        // README-EXAMPLE-2-END
        assertTrue(last < 0.8 * first, "loss falls: " + first + " -> " + last);
        assertEquals(4, out.tokens().size());
    }
}
