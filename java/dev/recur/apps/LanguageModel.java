package dev.recur.apps;

import dev.recur.backend.Backend;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.CellType;
import dev.recur.nn.RnnConfig;
import dev.recur.nn.RnnInput;
import dev.recur.nn.RnnOutput;
import dev.recur.nn.layers.Activations;
import dev.recur.nn.layers.Embedding;
import dev.recur.nn.layers.Linear;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.RecurrentLayer;
import dev.recur.nn.layers.SoftmaxCrossEntropy;
import dev.recur.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A token-level language model: embedding → stacked LSTM or GRU → linear layer over the vocabulary, trained
 * to predict the next token. The recurrent network runs on the backend given at creation; the embedding and
 * output layer run on the host. Parameters: {@code embedding.weight}, {@code rnn.<pytorch names>},
 * {@code output.weight}, {@code output.bias}.
 *
 * <p>Checkpoints ({@link #save}, {@link #load}) are safetensors files holding every parameter as F64 (so they
 * round-trip bit-exactly) and, in the metadata, the vocabulary and the shape of the model.
 */
public final class LanguageModel implements AutoCloseable {
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
    private final Shape shape;
    private final Parameters params = new Parameters();
    private final Embedding embedding;
    private final RecurrentLayer rnn;
    private final Linear output;

    private LanguageModel(TokenVocab vocab, Shape shape, Backend backend, long seed) {
        this.vocab = vocab;
        this.shape = shape;
        SplittableRandom seeds = new SplittableRandom(seed);
        this.embedding = new Embedding(params, "embedding", vocab.size(), shape.embedding(), -1, seeds.nextLong());
        RnnConfig cfg = RnnConfig.builder(shape.cell(), shape.embedding(), shape.hidden()).layers(shape.layers()).build();
        this.rnn = new RecurrentLayer(params, "rnn", cfg, backend, seeds.nextLong());
        try {
            this.output = new Linear(params, "output", shape.hidden(), vocab.size(), true, seeds.nextLong());
        } catch (RuntimeException e) {
            rnn.close();
            throw e;
        }
    }

    /** A freshly initialised model (seeded). */
    public static LanguageModel create(TokenVocab vocab, Shape shape, Backend backend, long seed) {
        if (vocab == null) throw new IllegalArgumentException("vocab: must not be null");
        if (shape == null) throw new IllegalArgumentException("shape: must not be null");
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        return new LanguageModel(vocab, shape, backend, seed);
    }

    public TokenVocab vocab() {
        return vocab;
    }

    public Shape shape() {
        return shape;
    }

    public Parameters parameters() {
        return params;
    }

    /** Writes every parameter (F64) and the vocabulary and shape (metadata) to a safetensors file. */
    public void save(Path file) throws IOException {
        SafeTensors.Writer w = SafeTensors.writer();
        params.values().forEach((k, v) -> w.put(k, v, DType.F64));
        w.metadata("format", "recur-lm-1").metadata("tokens", vocab.words() ? "words" : "chars")
                .metadata("cell", shape.cell().name().toLowerCase(java.util.Locale.ROOT)).metadata("layers", "" + shape.layers())
                .metadata("hidden", "" + shape.hidden()).metadata("embedding", "" + shape.embedding()).metadata("vocab", vocab.serialize());
        w.save(file);
    }

    /**
     * Loads a checkpoint written by {@link #save}. A file that is not such a checkpoint throws
     * {@link IllegalArgumentException} naming the file and what is wrong.
     */
    public static LanguageModel load(Path file, Backend backend) throws IOException {
        SafeTensors st = SafeTensors.read(file);
        Map<String, String> m = st.metadata();
        if (!"recur-lm-1".equals(m.get("format"))) {
            throw new IllegalArgumentException(file + ": not a recur language-model checkpoint (metadata format is "
                    + (m.get("format") == null ? "missing" : "'" + m.get("format") + "'") + ", expected 'recur-lm-1')");
        }
        Shape shape;
        TokenVocab vocab;
        try {
            shape = new Shape(CellType.valueOf(m.get("cell").toUpperCase(java.util.Locale.ROOT)), Integer.parseInt(m.get("layers")),
                    Integer.parseInt(m.get("hidden")), Integer.parseInt(m.get("embedding")));
            vocab = TokenVocab.deserialize("words".equals(m.get("tokens")), m.get("vocab"));
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + ": bad checkpoint metadata: " + e.getMessage());
        }
        LanguageModel lm = new LanguageModel(vocab, shape, backend, 0);
        try {
            lm.params.copyFrom(st.tensors());
        } catch (IllegalArgumentException e) {
            lm.close();
            throw new IllegalArgumentException(file + ": " + e.getMessage().replaceFirst("^source: ", ""));
        }
        return lm;
    }

    /** Loss and next-token accuracy of one batch. */
    public record Loss(double loss, double accuracy) {}

    /**
     * Forward and backward of a batch of windows (gradients added to {@link #parameters()}; zero them first).
     *
     * @param inputs  {@code [T*B]} time-major token ids
     * @param targets {@code [T*B]} the next token of each input
     */
    public Loss forwardBackward(int[] inputs, int[] targets, int steps, int batch, long seed) {
        Tensor x = embedding.forward(inputs, steps, batch);
        try (RnnOutput o = rnn.forwardTraining(RnnInput.of(x), seed)) {
            Tensor logits = output.forward(o.y());
            SoftmaxCrossEntropy.Result ce = SoftmaxCrossEntropy.compute(logits, targets, -1);
            Tensor dy = output.backward(o.y(), ce.dlogits());
            Tensor dx = rnn.backward(o, dy, null, null).dx();
            embedding.backward(inputs, dx);
            return new Loss(ce.loss(), ce.correct() / (double) ce.count());
        }
    }

    /** The recurrent state carried between calls (null = zeros). */
    private record State(Tensor h, Tensor c) {}

    private record Run(Tensor logits, State next) {}

    private Run run(int[] ids, int steps, int batch, State s) {
        Tensor x = embedding.forward(ids, steps, batch);
        try (RnnOutput o = rnn.forward(new RnnInput(x, s == null ? null : s.h(), s == null ? null : s.c(), null))) {
            return new Run(output.forward(o.y()), new State(o.hN(), o.cN()));
        }
    }

    /**
     * The per-token perplexity {@code exp(mean -log p(next | previous))} over {@code ids}: the text is read in
     * chunks with the state carried across them, every token after the first is predicted once.
     */
    public double perplexity(int[] ids) {
        if (ids.length < 2) throw new IllegalArgumentException("text: expected at least 2 tokens to measure perplexity, got " + ids.length);
        double nll = 0;
        int n = 0;
        State s = null;
        int chunk = 256;
        for (int start = 0; start + 1 < ids.length; start += chunk) {
            int len = Math.min(chunk, ids.length - 1 - start);
            int[] in = java.util.Arrays.copyOfRange(ids, start, start + len);
            Run r = run(in, len, 1, s);
            double[] lp = Activations.logSoftmax(r.logits()).data();
            int v = vocab.size();
            for (int t = 0; t < len; t++) nll -= lp[t * v + ids[start + t + 1]];
            n += len;
            s = r.next();
        }
        return Math.exp(nll / n);
    }

    /**
     * {@code length} tokens drawn one at a time from {@code softmax(logits / temperature)} after reading
     * {@code prime}; seeded, so the same seed gives the same text.
     */
    public int[] sample(int[] prime, int length, double temperature, long seed) {
        if (prime == null || prime.length == 0) throw new IllegalArgumentException("prime: expected at least one token, got none");
        if (length <= 0) throw new IllegalArgumentException("length: expected > 0, got " + length);
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature: expected a finite value > 0, got " + temperature);
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        Run r = run(prime, prime.length, 1, null);
        int v = vocab.size();
        double[] last = java.util.Arrays.copyOfRange(r.logits().data(), (prime.length - 1) * v, prime.length * v);
        State s = r.next();
        int[] out = new int[length];
        for (int i = 0; i < length; i++) {
            out[i] = draw(last, temperature, rnd);
            r = run(new int[] {out[i]}, 1, 1, s);
            last = r.logits().data();
            s = r.next();
        }
        return out;
    }

    private static int draw(double[] logits, double temperature, SplittableRandom rnd) {
        double m = Double.NEGATIVE_INFINITY;
        for (double l : logits) m = Math.max(m, l / temperature);
        double[] p = new double[logits.length];
        double sum = 0;
        for (int j = 0; j < p.length; j++) {
            p[j] = Math.exp(logits[j] / temperature - m);
            sum += p[j];
        }
        double u = rnd.nextDouble() * sum;
        for (int j = 0; j < p.length; j++) {
            u -= p[j];
            if (u < 0) return j;
        }
        return p.length - 1;
    }

    @Override
    public void close() {
        rnn.close();
    }
}
