package dev.recur;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
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
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.nn.train.ParamRule;
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

/** The Java examples of README.md, verbatim between the markers, so the README stays true. */
class ReadmeExampleTest {

    @Test
    void deviceTensorsTrainingStepMovesNothing() {
        float[] hostX = new float[20 * 8 * 32];
        for (int i = 0; i < hostX.length; i++) hostX[i] = (float) Math.sin(i);
        long movedBytes;
        int[] dxShape = null;
        RnnWeights w;
        // README-EXAMPLE-0-BEGIN
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 32, 64).layers(2).bidirectional(true).build();
        try (DeviceBackend be = Backends.openBestDevice();         // cuda → opencl → cpu
             Rnn lstm = Rnn.create(cfg, be, RnnWeights.init(cfg, 42)); // weights: one flat buffer on the device
             WeightSpace grads = lstm.newGradientSpace(be);         // gradients: the same layout, PyTorch names
             DeviceTensor x = DeviceTensor.of(be, hostX, 20, 8, 32);  // [T, B, I]: the one upload
             DeviceTensor lengths = DeviceTensor.ofInts(be, new int[] {20, 17, 9, 20, 3, 11, 20, 1}, 8)) {
            Traffic t0 = be.traffic();
            grads.zero();
            for (int micro = 0; micro < 2; micro++) {               // accumulate over micro-batches
                try (DeviceRnnOutput out = lstm.forwardTraining(DeviceRnnInput.of(x).withLengths(lengths), micro);
                     DeviceRnnGradients g = lstm.backward(out, out.y(), null, null, grads, GradMode.ADD)) {
                    dxShape = g.dx().shape();                       // dx, dh0, dc0 stay on the device too
                }
            }
            movedBytes = be.traffic().minus(t0).bytes();            // 0: nothing crossed to or from the host
            w = lstm.weightSpace().toWeights();                     // the host sees data when it asks
        }
        // README-EXAMPLE-0-END
        assertEquals(0, movedBytes);
        assertArrayEquals(new int[] {20, 8, 32}, dxShape);
        assertEquals(RnnWeights.init(cfg, 42).get("weight_hh", 1, 1).data()[5], w.get("weight_hh", 1, 1).data()[5], 1e-7);
    }

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
        Decoded out, sampled;
        // README-EXAMPLE-2-BEGIN
        Seq2SeqConfig cfg = Seq2SeqConfig.builder(13, 13).embedding(16)
                .encoder(CellType.GRU, 32, 1, true).decoder(CellType.GRU, 64, 1)
                .attention(AttentionStyle.LUONG, AttentionScore.DOT).tokens(PAD, BOS, EOS).build();
        OptimizerConfig adamW = OptimizerConfig.builder(OptimizerConfig.Kind.ADAMW, 0.01).weightDecay(1e-4)
                .noDecay(ParamRule.torchNoDecay())          // PyTorch's grouping: no decay for biases, norms, embeddings
                .clipNorm(5.0).build();
        try (Backend backend = Backends.openBest(); Seq2Seq model = Seq2Seq.create(cfg, backend, 42)) {
            Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, adamW, SamplingSchedule.constant(1.0), 42);
            for (int step = 0; step < 40; step++) {        // on a device: the ids go up, the loss comes down
                double loss = trainer.step(Seq2SeqBatch.of(src, tgt, PAD, EOS)).loss();
                if (step == 0) first = loss;
                last = loss;
            }
            out = model.beamSearch(src.subList(0, 4), new BeamSearch(4, 0.6, 10)); // decoded on the device too
            sampled = model.sample(src.subList(0, 4), 0.8, 7, 10);                  // temperature 0.8, seed 7
        }
        // README-EXAMPLE-2-END
        assertTrue(last < 0.8 * first, "loss falls: " + first + " -> " + last);
        assertEquals(4, out.tokens().size());
        assertEquals(4, sampled.tokens().size());
    }

    /** Each example above stands in README.md as written here (indentation aside), so the README cannot drift. */
    @Test
    void theReadmeHoldsEachExampleVerbatim() throws java.io.IOException {
        String readme = java.nio.file.Files.readString(java.nio.file.Path.of("README.md"));
        String test = java.nio.file.Files.readString(java.nio.file.Path.of("tests/java/dev/recur/ReadmeExampleTest.java"));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                "// README-EXAMPLE-(\\d)-BEGIN\n(.*?)\n\\s*// README-EXAMPLE-\\1-END", java.util.regex.Pattern.DOTALL).matcher(test);
        int found = 0;
        String flatReadme = flat(readme);
        while (m.find()) {
            found++;
            assertTrue(flatReadme.contains(flat(m.group(2))), "README.md lacks example " + m.group(1) + " as written in this test");
        }
        assertEquals(3, found, "examples between markers in this test");
    }

    /** Lines stripped of their indentation and trailing blanks. */
    private static String flat(String text) {
        StringBuilder sb = new StringBuilder();
        for (String line : text.split("\n")) sb.append(line.strip()).append('\n');
        return sb.toString();
    }
}
