package dev.recur.cli;

import dev.recur.apps.TextModel;
import dev.recur.apps.TokenVocab;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.nn.train.Adam;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code recur lm}: training a few steps, samples, perplexity, bit-exact checkpoints, word level and errors. */
class LmCommandTest {
    /** A small model so the suite stays fast. */
    static final String[] SMALL = {"--backend", "reference", "--hidden", "16", "--layers", "2", "--embedding", "8", "--batch", "4",
            "--seq-len", "16"};

    @TempDir
    Path dir;

    static String[] args(String[] base, String... more) {
        String[] a = new String[1 + base.length + more.length];
        a[0] = "lm";
        System.arraycopy(base, 0, a, 1, base.length);
        System.arraycopy(more, 0, a, 1 + base.length, more.length);
        return a;
    }

    /** The text of each "--- sample, temperature T ---" block (each is followed by exactly one line break). */
    static List<String> samples(String out) {
        String[] blocks = out.split("\n--- sample, temperature [0-9.]+ ---\n", -1);
        List<String> list = new java.util.ArrayList<>();
        for (int i = 1; i < blocks.length; i++) {
            String b = blocks[i].split("\nsaved ", -1)[0];
            assertTrue(b.endsWith("\n"), "sample block " + i + " does not end with a line break: '" + b + "'");
            list.add(b.substring(0, b.length() - 1));
        }
        return list;
    }

    @Test
    void checkpointRoundTripsBitExactly() throws IOException {
        TokenVocab v = TokenVocab.chars("the quick brown fox jumps over the lazy dog\n");
        TextModel.Shape shape = new TextModel.Shape(CellType.GRU, 2, 12, 6);
        Path ck = dir.resolve("lm.safetensors");
        Map<String, Tensor> trained;
        int[] samples;
        try (ReferenceBackend be = new ReferenceBackend(); TextModel lm = TextModel.create(v, shape, be, 5)) {
            int[] ids = v.encode("the quick brown fox jumps over the lazy dog\n");
            Adam adam = new Adam(0.01);
            for (int step = 0; step < 3; step++) {
                int t = 10, b = 2;
                int[] in = new int[t * b], tg = new int[t * b];
                for (int i = 0; i < t; i++) {
                    for (int j = 0; j < b; j++) {
                        in[i * b + j] = ids[i + 7 * j];
                        tg[i * b + j] = ids[i + 7 * j + 1];
                    }
                }
                lm.parameters().zeroGrad();
                lm.forwardBackward(in, tg, t, b, step);
                adam.step(lm.parameters());
            }
            trained = lm.parameters().snapshot();
            samples = lm.sample(v.encode("the "), 30, 0.9, 11);
            lm.save(ck);
        }
        try (ReferenceBackend be = new ReferenceBackend(); TextModel back = TextModel.load(ck, be)) {
            assertEquals(shape, back.shape(), "shape from the checkpoint");
            assertEquals(v.serialize(), back.vocab().serialize(), "vocabulary from the checkpoint");
            assertEquals(trained.keySet(), back.parameters().values().keySet(), "parameter names");
            for (var e : trained.entrySet()) {
                double[] want = e.getValue().data(), got = back.parameters().value(e.getKey()).data();
                for (int i = 0; i < want.length; i++) {
                    if (Double.doubleToRawLongBits(want[i]) != Double.doubleToRawLongBits(got[i])) {
                        throw new AssertionError(e.getKey() + "[" + i + "]: expected " + want[i] + ", got " + got[i]);
                    }
                }
            }
            assertArrayEquals(samples, back.sample(v.encode("the "), 30, 0.9, 11), "samples from the loaded model, same seed");
        }
    }

    @Test
    void trainsSamplesSavesAndSamplesTheSameFromTheLoadedCheckpoint() throws IOException {
        Path ck = dir.resolve("chars.safetensors");
        CliRun r = CliRun.of(args(SMALL, "--steps", "3", "--length", "40", "--temperatures", "0.5,1.0", "--save", ck.toString()));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("character-level language model: LSTM, 2 layer(s) of 16"), r.out());
        Matcher m = Pattern.compile("held-out perplexity: ([0-9.]+) per character").matcher(r.out());
        assertTrue(m.find(), r.out());
        double ppl = Double.parseDouble(m.group(1));
        // After 3 steps the model is close to uniform over the ~60 characters of the sonnets; never above it by much.
        assertTrue(ppl > 1 && ppl < 120, "perplexity " + ppl);
        List<String> trainedSamples = samples(r.out());
        assertEquals(2, trainedSamples.size(), r.out());
        for (String s : trainedSamples) assertEquals(40, s.length(), "sample length in characters: '" + s + "'");
        assertTrue(Files.isRegularFile(ck), "checkpoint written");

        CliRun s = CliRun.of("lm", "--backend", "reference", "--load", ck.toString(), "--sample", "--length", "40", "--temperatures", "0.5,1.0");
        assertEquals(0, s.code(), s.toString());
        assertEquals(trainedSamples, samples(s.out()), "samples from --load --sample with the same seed");
        assertTrue(!s.out().contains("perplexity"), "--sample does not train or evaluate:\n" + s.out());

        // --load without --sample trains further from the checkpoint, keeping its shape and vocabulary.
        CliRun more = CliRun.of("lm", "--backend", "reference", "--load", ck.toString(), "--steps", "1", "--batch", "2", "--seq-len", "8",
                "--length", "5", "--temperatures", "1.0");
        assertEquals(0, more.code(), more.toString());
        assertTrue(more.out().contains("LSTM, 2 layer(s) of 16, embedding 8"), more.out());
        assertTrue(more.out().contains("training  1 steps x 2 windows of 8 tokens"), more.out());
        assertTrue(more.out().contains("held-out perplexity"), more.out());
    }

    @Test
    void wordLevelKeepsTheMostFrequentWordsPlusUnkAndEos() {
        CliRun r = CliRun.of(args(SMALL, "--words", "--vocab", "50", "--steps", "2", "--length", "12", "--temperatures", "1.0"));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("word-level language model"), r.out());
        assertTrue(r.out().contains("vocabulary 52,"), "50 words + <unk> + <eos>:\n" + r.out());
        assertTrue(r.out().contains("per word"), r.out());
        TokenVocab v = TokenVocab.words("the cat, the dog.\nthe end", 2);
        assertEquals(List.of("<unk>", "<eos>", "the", "cat"), List.of(v.token(0), v.token(1), v.token(2), v.token(3)));
        assertArrayEquals(new int[] {2, 3, 0, 2, 0, 0, 1, 2, 0}, v.encode("the cat, the dog.\nthe end"));
        assertEquals("the cat <unk>\nthe", v.decode(new int[] {2, 3, 0, 1, 2}));
    }

    @Test
    void badOptionsAndFilesExitTwoWithOneLine() throws IOException {
        Path notCk = Files.writeString(dir.resolve("not-a-checkpoint.safetensors"), "hello");
        Path latin1 = Files.write(dir.resolve("latin1.txt"), new byte[] {'c', 'a', 'f', (byte) 0xE9});
        String[][] cases = {
                {"--sample"},
                {"--text", dir.resolve("missing.txt").toString()},
                {"--text", latin1.toString()},
                {"--load", notCk.toString(), "--sample"},
                {"--cell", "rnn_tanh"},
                {"--hidden", "0"},
                {"--temperatures", "0.5,-1"},
                {"--load", notCk.toString(), "--hidden", "8"},
                {"--save", dir.resolve("no/such/folder/x.safetensors").toString()},
        };
        String[] named = {"--sample", "--text", "--text", "--load", "--cell", "--hidden", "--temperatures", "--hidden", "--save"};
        for (int i = 0; i < cases.length; i++) {
            String[] a = new String[cases[i].length + 1];
            a[0] = "lm";
            System.arraycopy(cases[i], 0, a, 1, cases[i].length);
            CliRun r = CliRun.of(a);
            assertEquals(2, r.code(), String.join(" ", a) + "\n" + r);
            assertEquals(1, r.errLines().length, String.join(" ", a) + "\n" + r);
            assertTrue(r.err().contains(named[i]), "expected " + named[i] + " in: " + r.err());
        }
    }
    /** The optimizer options reach the trainer (the summary names it) and bad values are refused naming the option. */
    @Test
    void optimizerOptionsTrainAndBadOnesAreRefused() {
        CliRun sgd = CliRun.of(args(SMALL, "--steps", "3", "--optimizer", "sgd", "--momentum", "0.8", "--lr", "0.1",
                "--weight-decay", "1e-4", "--clip", "1", "--length", "5", "--temperatures", "1"));
        assertEquals(0, sgd.code(), sgd.toString());
        assertTrue(sgd.out().contains("SGD lr 0.1 weight decay 0.0001, clip 1"), sgd.out());
        CliRun adamw = CliRun.of(args(SMALL, "--steps", "3", "--optimizer", "adamw", "--weight-decay", "0.01",
                "--clip", "Infinity", "--length", "5", "--temperatures", "1"));
        assertEquals(0, adamw.code(), adamw.toString());
        assertTrue(adamw.out().contains("AdamW lr 0.01 weight decay 0.01, clip none"), adamw.out());
        String[][] bad = {
                {"--optimizer", "rmsprop"}, {"--weight-decay", "-1"}, {"--clip", "0"}, {"--momentum", "0.5"},
                {"--optimizer", "sgd", "--momentum", "1"}};
        String[] named = {"--optimizer", "--weight-decay", "--clip", "--momentum", "--momentum"};
        for (int i = 0; i < bad.length; i++) {
            CliRun r = CliRun.of(args(SMALL, bad[i]));
            assertEquals(2, r.code(), String.join(" ", bad[i]) + ": " + r);
            assertTrue(r.err().contains(named[i]), String.join(" ", bad[i]) + " should name " + named[i] + ": " + r.err());
        }
    }
}
