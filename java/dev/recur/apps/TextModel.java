package dev.recur.apps;

import dev.recur.backend.Backend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.io.SafeTensors;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.lm.LanguageModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A {@link LanguageModel} together with its {@link TokenVocab}: what {@code recur lm} trains, samples, measures
 * and checkpoints. Checkpoints are the library's language-model checkpoints (every parameter as F64, so they
 * round-trip bit-exactly, and the network configuration) with the vocabulary added to the metadata
 * ({@code tokens} = {@code chars} or {@code words}, {@code vocab}).
 */
public final class TextModel implements AutoCloseable {
    /**
     * @param cell      LSTM or GRU
     * @param layers    stacked recurrent layers
     * @param hidden    hidden size of every layer
     * @param embedding token embedding width
     */
    public record Shape(CellType cell, int layers, int hidden, int embedding) {
        public Shape {
            if (cell != CellType.LSTM && cell != CellType.GRU) throw new IllegalArgumentException("cell: expected lstm or gru, got " + cell);
            if (layers <= 0) throw new IllegalArgumentException("layers: expected > 0, got " + layers);
            if (hidden <= 0) throw new IllegalArgumentException("hidden: expected > 0, got " + hidden);
            if (embedding <= 0) throw new IllegalArgumentException("embedding: expected > 0, got " + embedding);
        }
    }

    private final TokenVocab vocab;
    private final LanguageModel lm;

    private TextModel(TokenVocab vocab, LanguageModel lm) {
        this.vocab = vocab;
        this.lm = lm;
    }

    /** A freshly initialised model (seeded). */
    public static TextModel create(TokenVocab vocab, Shape shape, Backend backend, long seed) {
        if (vocab == null) throw new IllegalArgumentException("vocab: must not be null");
        if (shape == null) throw new IllegalArgumentException("shape: must not be null");
        RnnConfig cfg = RnnConfig.builder(shape.cell(), shape.embedding(), shape.hidden()).layers(shape.layers()).build();
        return new TextModel(vocab, LanguageModel.create(vocab.size(), shape.embedding(), cfg, -1, backend, seed));
    }

    public TokenVocab vocab() {
        return vocab;
    }

    public Shape shape() {
        RnnConfig c = lm.rnnConfig();
        return new Shape(c.cell(), c.numLayers(), c.hiddenSize(), c.inputSize());
    }

    public Parameters parameters() {
        return lm.parameters();
    }

    /** The network underneath. */
    public LanguageModel model() {
        return lm;
    }

    /** Writes the checkpoint: parameters, network configuration and vocabulary. */
    public void save(Path file) throws IOException {
        lm.save(file, Map.of("tokens", vocab.words() ? "words" : "chars", "vocab", vocab.serialize()));
    }

    /**
     * Loads a checkpoint written by {@link #save}. A file that is not one throws {@link IllegalArgumentException}
     * naming the file and what is wrong.
     */
    public static TextModel load(Path file, Backend backend) throws IOException {
        Map<String, String> m = SafeTensors.read(file).metadata();
        String tokens = m.get("tokens");
        if (!LanguageModel.FORMAT.equals(m.get("format")) || m.get("vocab") == null || !("chars".equals(tokens) || "words".equals(tokens))) {
            throw new IllegalArgumentException(file + ": not a language-model checkpoint of 'recur lm' (expected metadata format '"
                    + LanguageModel.FORMAT + "' with tokens and vocab entries)");
        }
        TokenVocab vocab = TokenVocab.deserialize("words".equals(tokens), m.get("vocab"));
        LanguageModel lm = LanguageModel.open(file, backend);
        if (lm.vocabSize() != vocab.size()) {
            lm.close();
            throw new IllegalArgumentException(file + ": the vocabulary has " + vocab.size() + " tokens but the model " + lm.vocabSize());
        }
        return new TextModel(vocab, lm);
    }

    /** Loss and next-token accuracy of one batch. */
    public record Loss(double loss, double accuracy) {}

    /**
     * Forward and backward of a batch of windows from a zero state (gradients added to {@link #parameters()};
     * zero them first).
     *
     * @param inputs  {@code [T*B]} time-major token ids
     * @param targets {@code [T*B]} the next token of each input
     */
    public Loss forwardBackward(int[] inputs, int[] targets, int steps, int batch, long seed) {
        LanguageModel.Loss l = lm.forwardBackward(inputs, targets, steps, batch, null, null, seed);
        return new Loss(l.loss(), l.correct() / (double) l.tokens());
    }

    /**
     * A trainer of the network underneath ({@link LanguageModel#trainer}): on a device backend each step uploads the
     * batch's ids and downloads the loss, nothing else. The model downloads its parameters when it is read (perplexity,
     * samples, save); closing the trainer frees its device memory.
     */
    public dev.recur.nn.lm.LanguageModelTrainer trainer(dev.recur.nn.lm.LanguageModelTrainer.Config config) {
        return lm.trainer(config);
    }

    /**
     * The per-token perplexity {@code exp(mean -log p(next | previous))} over {@code ids}, every token after the first
     * predicted once with all of the text before it ({@link LanguageModel#streamLoss}): on a device backend the ids go
     * up once and 4 bytes come back; on the host in chunks with the recurrent state carried across them.
     */
    public double perplexity(int[] ids) {
        if (ids.length < 2) throw new IllegalArgumentException("text: expected at least 2 tokens to measure perplexity, got " + ids.length);
        return Math.exp(lm.streamLoss(ids));
    }

    /**
     * {@code length} tokens drawn one at a time from {@code softmax(logits / temperature)} after reading
     * {@code prime}; seeded, so the same seed gives the same text. (No end token: the text runs to the length.) On a
     * device backend every step runs there and the tokens come back once ({@link LanguageModel#sample}); the device's
     * generator is counter-based, so it draws another stream than the host's for the same seed.
     */
    public int[] sample(int[] prime, int length, double temperature, long seed) {
        if (prime == null || prime.length == 0) throw new IllegalArgumentException("prime: expected at least one token, got none");
        if (length <= 0) throw new IllegalArgumentException("length: expected > 0, got " + length);
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature: expected a finite value > 0, got " + temperature);
        }
        return lm.sample(List.of(prime), length, temperature, seed).get(0);
    }

    @Override
    public void close() {
        lm.close();
    }
}
