package dev.recur.nn.lm;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.RnnInput;
import dev.recur.nn.decode.DecoderState;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.decode.StepModel;
import dev.recur.nn.layers.ConfigMetadata;
import dev.recur.nn.layers.Embedding;
import dev.recur.nn.layers.Linear;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.RecurrentLayer;
import dev.recur.nn.layers.SoftmaxCrossEntropy;
import dev.recur.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A next-token language model (the one-to-many / generation pattern): embedding → a stacked unidirectional
 * recurrent network → a {@link Linear} to vocabulary logits at every step. Trains with cross-entropy on
 * time-major batches, optionally carrying the recurrent state across batches (truncated backpropagation
 * through time: the carried state is a constant, no gradient flows into it), and generates through
 * {@link #stepModel} with {@link dev.recur.nn.decode.Sampler}, {@link dev.recur.nn.decode.Greedy} or
 * {@link dev.recur.nn.decode.BeamSearch}.
 *
 * <p>Parameter names: {@code embedding.weight}, {@code rnn.<pytorch names>}, {@code output.weight/bias}.
 */
public final class LanguageModel implements AutoCloseable {
    private final int vocab;
    private final int padId;
    private final RnnConfig rnnConfig;
    private final Parameters params = new Parameters();
    private final Embedding embedding;
    private final RecurrentLayer rnn;
    private final Linear output;

    private LanguageModel(int vocab, int embeddingSize, RnnConfig rnnConfig, int padId, Backend backend, long seed) {
        this.vocab = vocab;
        this.padId = padId;
        this.rnnConfig = rnnConfig;
        SplittableRandom seeds = new SplittableRandom(seed);
        embedding = new Embedding(params, "embedding", vocab, embeddingSize, padId, seeds.nextLong());
        rnn = new RecurrentLayer(params, "rnn", rnnConfig, backend, seeds.nextLong());
        try {
            output = new Linear(params, "output", rnnConfig.outputWidth(), vocab, true, seeds.nextLong());
        } catch (RuntimeException | Error e) {
            rnn.close();
            throw e;
        }
    }

    /**
     * @param rnn   unidirectional, time-major, with inputSize = embeddingSize (any cell, layers, dropout, projection)
     * @param padId id whose embedding stays 0 and whose targets are not counted, or -1 for none
     */
    public static LanguageModel create(int vocab, int embeddingSize, RnnConfig rnn, int padId, Backend backend, long seed) {
        if (vocab <= 0) throw new IllegalArgumentException("vocab: expected > 0, got " + vocab);
        if (rnn == null) throw new IllegalArgumentException("rnn: must not be null");
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        if (rnn.bidirectional()) throw new IllegalArgumentException("rnn: a language model must be unidirectional, got bidirectional");
        if (rnn.inputSize() != embeddingSize) {
            throw new IllegalArgumentException("rnn: expected inputSize " + embeddingSize + " (embeddingSize), got " + rnn.inputSize());
        }
        return new LanguageModel(vocab, embeddingSize, rnn, padId, backend, seed);
    }

    /**
     * The parameters (live host tensors). While a device {@link #trainer} is open they are its host mirror: this call
     * first downloads them if a training step changed them on the device.
     */
    public Parameters parameters() {
        pullFromTrainer();
        return params;
    }

    /**
     * A trainer for this model (Adam(W) with global-norm clipping): on a device backend every step runs on the device
     * and moves only the batch in and the loss out ({@link LanguageModelTrainer}); on the reference backend it steps
     * on the host. One at a time; close it to free its device memory (the parameters are downloaded first).
     */
    public LanguageModelTrainer trainer(LanguageModelTrainer.Config config) {
        if (trainer != null) throw new IllegalStateException("trainer: this model already has an open trainer; close it first");
        LanguageModelTrainer t = new LanguageModelTrainer(this, config);
        trainer = t;
        // The trainer holds the device parameters now: no second copy while it is open.
        closeOwnWeights();
        return t;
    }

    private LanguageModelTrainer trainer;
    /** The device embedding and output layer for inference when no device trainer is open (see {@link #deviceWeights}). */
    private LanguageModelDevice.OwnWeights ownWeights;

    /**
     * Whether generation ({@link #deviceStepModel}) and evaluation ({@link #meanLoss}, {@link #streamLoss}) run on the
     * device: the network's backend is a device backend.
     */
    public boolean runsOnDevice() {
        return rnn.rnn().backend() instanceof DeviceBackend;
    }

    /**
     * The embedding and output layer on the device for inference: the open device trainer's own buffers (current, and
     * never pulled to the host for this), else a copy uploaded once and kept until a declared host write.
     */
    LanguageModelDevice.Weights deviceWeights() {
        DeviceBuffer[] t = trainer != null ? trainer.deviceParameters() : null;
        if (t != null) return new LanguageModelDevice.Weights(t[0], t[1]);
        if (ownWeights == null) ownWeights = new LanguageModelDevice.OwnWeights(this, (DeviceBackend) rnn.rnn().backend());
        return ownWeights.current();
    }

    private void closeOwnWeights() {
        if (ownWeights != null) {
            LanguageModelDevice.OwnWeights w = ownWeights;
            ownWeights = null;
            w.close();
        }
    }

    void trainerClosed(LanguageModelTrainer t) {
        if (trainer == t) trainer = null;
    }

    private void pullFromTrainer() {
        if (trainer != null) trainer.pullIfChanged();
    }

    /** The parameters without a download from an open trainer (the trainer's own access). */
    Parameters hostParameters() {
        return params;
    }

    Embedding embeddingLayer() {
        return embedding;
    }

    RecurrentLayer rnnLayer() {
        return rnn;
    }

    Linear outputLayer() {
        return output;
    }

    int padId() {
        return padId;
    }

    public RnnConfig rnnConfig() {
        return rnnConfig;
    }

    public int vocabSize() {
        return vocab;
    }

    /**
     * @param loss    mean cross-entropy per counted target (nats); {@link #perplexity()} = exp(loss)
     * @param tokens  counted targets
     * @param correct counted targets ranked first
     * @param hN      final hidden state {@code [L, B, Hout]} to carry into the next batch
     * @param cN      final cell state (LSTM) or null
     */
    public record Loss(double loss, int tokens, int correct, Tensor hN, Tensor cN) {
        public double perplexity() {
            return Math.exp(loss);
        }
    }

    /**
     * Forward and backward of next-token prediction; gradients are added to {@link #parameters()}.
     *
     * @param inputs  {@code [T * B]} time-major input ids
     * @param targets {@code [T * B]} the id to predict at each position (the padding id is not counted)
     * @param h0      initial state {@code [L, B, Hout]} (e.g. a previous batch's {@code hN}), or null for zeros
     * @param c0      initial cell state (LSTM), or null
     */
    public Loss forwardBackward(int[] inputs, int[] targets, int steps, int batch, Tensor h0, Tensor c0, long seed) {
        return run(inputs, targets, steps, batch, h0, c0, seed, true);
    }

    /** The loss without backward (nothing accumulated). */
    public Loss loss(int[] inputs, int[] targets, int steps, int batch, Tensor h0, Tensor c0, long seed) {
        return run(inputs, targets, steps, batch, h0, c0, seed, false);
    }

    /**
     * The mean cross-entropy per counted target (nats) of a batch from zero states, without dropout and without
     * backward: on the device when {@link #runsOnDevice()} (the inference forward there, over the open trainer's
     * parameters or the model's kept device copy; the ids and targets go up, {@code 8·T·B} bytes, and the 4-byte mean
     * comes down, one blocking wait), else {@link #loss}'s value on the host.
     *
     * @param inputs  {@code [T * B]} time-major input ids
     * @param targets {@code [T * B]} the id to predict at each position (the padding id is not counted)
     */
    public double meanLoss(int[] inputs, int[] targets, int steps, int batch) {
        if (steps <= 0) throw new IllegalArgumentException("steps: expected > 0, got " + steps);
        if (batch <= 0) throw new IllegalArgumentException("batch: expected > 0, got " + batch);
        checkIds("inputs", inputs, (long) steps * batch, false);
        checkIds("targets", targets, (long) steps * batch, true);
        if (!runsOnDevice()) return loss(inputs, targets, steps, batch, null, null, 0).loss();
        DeviceBackend be = (DeviceBackend) rnn.rnn().backend();
        int n = steps * batch;
        try (DeviceBuffer up = be.allocate(DeviceBuffer.Type.I32, 2L * n)) {
            be.upload(inputs, 0, up, 0, n);
            be.upload(targets, 0, up, n, n);
            return LanguageModelDevice.meanLoss(this, up, 0, up, n, steps, batch);
        }
    }

    /**
     * The mean {@code -log p(next | everything before)} over a token stream, read from a zero state: every token after
     * the first is predicted once ({@code exp} of it is the per-token perplexity). No dropout. On the device when
     * {@link #runsOnDevice()}: the ids go up once ({@code 4·n} bytes; the targets are the same buffer one place on),
     * the network runs over the stream in chunks with its state carried on the device, and the 4-byte mean comes down
     * (one blocking wait). Otherwise on the host in chunks of 256 tokens with the state carried.
     */
    public double streamLoss(int[] ids) {
        if (ids == null || ids.length < 2) {
            throw new IllegalArgumentException("ids: expected at least 2 tokens, got " + (ids == null ? "null" : ids.length));
        }
        checkIds("ids", ids, ids.length, false);
        int n = ids.length - 1;
        if (runsOnDevice()) {
            DeviceBackend be = (DeviceBackend) rnn.rnn().backend();
            try (DeviceBuffer up = be.allocate(DeviceBuffer.Type.I32, ids.length)) {
                be.upload(ids, 0, up, 0, ids.length);
                return LanguageModelDevice.meanLoss(this, up, 0, up, 1, n, 1);
            }
        }
        double nll = 0;
        int count = 0;
        Tensor h = null, c = null;
        int chunk = 256;
        for (int start = 0; start < n; start += chunk) {
            int len = Math.min(chunk, n - start);
            int[] in = java.util.Arrays.copyOfRange(ids, start, start + len);
            int[] tg = java.util.Arrays.copyOfRange(ids, start + 1, start + 1 + len);
            Loss l = loss(in, tg, len, 1, h, c, 0);
            nll += l.loss() * l.tokens();
            count += l.tokens();
            h = l.hN();
            c = l.cN();
        }
        return count == 0 ? 0 : nll / count;
    }

    private void checkIds(String arg, int[] ids, long n, boolean padAllowed) {
        if (ids == null || ids.length != n) {
            throw new IllegalArgumentException(arg + ": expected " + n + " ids, got " + (ids == null ? "null" : ids.length));
        }
        for (int i = 0; i < n; i++) {
            if ((ids[i] < 0 || ids[i] >= vocab) && !(padAllowed && ids[i] == padId)) {
                throw new IllegalArgumentException(arg + ": entry " + i + " must be in [0, " + vocab + "), got " + ids[i]);
            }
        }
    }

    private Loss run(int[] inputs, int[] targets, int steps, int batch, Tensor h0, Tensor c0, long seed, boolean backward) {
        pullFromTrainer();
        if (steps <= 0) throw new IllegalArgumentException("steps: expected > 0, got " + steps);
        if (batch <= 0) throw new IllegalArgumentException("batch: expected > 0, got " + batch);
        if (inputs == null || inputs.length != steps * batch) {
            throw new IllegalArgumentException("inputs: expected " + steps * batch + " ids, got " + (inputs == null ? "null" : inputs.length));
        }
        Tensor x = embedding.forward(inputs, steps, batch);
        try (RnnOutput out = rnn.forwardTraining(new RnnInput(x, h0, c0, null), seed)) {
            Tensor logits = output.forward(out.y());
            SoftmaxCrossEntropy.Result ce = SoftmaxCrossEntropy.compute(logits, targets, padId);
            if (backward) {
                Tensor dy = output.backward(out.y(), ce.dlogits());
                RnnGradients g = rnn.backward(out, dy, null, null);
                embedding.backward(inputs, g.dx());
            }
            return new Loss(ce.loss(), ce.count(), ce.correct(), out.hN(), out.cN());
        }
    }

    /**
     * Feeds each prompt except its last token and returns the model, positioned there, for the decoders; start
     * decoding with {@link #lastTokens(List)} as the per-item start tokens. Prompts must be non-empty.
     */
    public StepModel stepModel(List<int[]> prompts) {
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("prompts: expected at least one prompt");
        pullFromTrainer();
        int b = prompts.size(), t = 1;
        int[] len = new int[b];
        for (int i = 0; i < b; i++) {
            if (prompts.get(i) == null || prompts.get(i).length == 0) throw new IllegalArgumentException("prompts: prompt " + i + " is empty");
            len[i] = prompts.get(i).length - 1;
            t = Math.max(t, len[i]);
        }
        int ld = rnnConfig.numLayers(), hout = rnnConfig.outSize(), hc = rnnConfig.hiddenSize();
        Tensor h = Tensor.zeros(ld, b, hout);
        Tensor c = rnnConfig.cell() == CellType.LSTM ? Tensor.zeros(ld, b, hc) : null;
        boolean any = false;
        for (int l : len) any |= l > 0;
        if (any) {
            int[] ids = new int[t * b];
            int[] lengths = new int[b];
            java.util.Arrays.fill(ids, Math.max(padId, 0));
            for (int i = 0; i < b; i++) {
                for (int s = 0; s < len[i]; s++) ids[s * b + i] = prompts.get(i)[s];
                lengths[i] = Math.max(1, len[i]);
            }
            try (RnnOutput out = rnn.forward(new RnnInput(embedding.forward(ids, t, b), null, null, lengths))) {
                for (int i = 0; i < b; i++) {
                    if (len[i] == 0) continue;
                    for (int l = 0; l < ld; l++) {
                        System.arraycopy(out.hN().data(), (l * b + i) * hout, h.data(), (l * b + i) * hout, hout);
                        if (c != null) System.arraycopy(out.cN().data(), (l * b + i) * hc, c.data(), (l * b + i) * hc, hc);
                    }
                }
            }
        }
        return new Stepper(h, c);
    }

    /**
     * As {@link #stepModel} on the device, for {@link dev.recur.nn.decode.DeviceDecoding} (greedy, sampling): the
     * prompts go up once (padded ids and lengths, one upload), the network reads them there, and every later state,
     * the logits and the weights (the open trainer's, or the model's kept device copy) stay there. Only when
     * {@link #runsOnDevice()}; close it to free the states.
     */
    public DeviceStepModel deviceStepModel(List<int[]> prompts) {
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("prompts: expected at least one prompt");
        if (!runsOnDevice()) {
            throw new IllegalStateException("this model does not run on a device (runsOnDevice() is false): backend "
                    + rnn.rnn().backend().name());
        }
        for (int i = 0; i < prompts.size(); i++) {
            if (prompts.get(i) == null || prompts.get(i).length == 0) throw new IllegalArgumentException("prompts: prompt " + i + " is empty");
            checkIds("prompts: prompt " + i, prompts.get(i), prompts.get(i).length, false);
        }
        return new LanguageModelDevice.Decoder(this, prompts);
    }

    /**
     * {@code length} tokens per prompt drawn from {@code softmax(logits / temperature)} after reading the prompt (no end
     * token: every row runs to the length), seeded. On the device when {@link #runsOnDevice()}
     * ({@link dev.recur.nn.decode.DeviceDecoding#sample}: the prompts up, the tokens down once), else the host
     * {@link dev.recur.nn.decode.Sampler}. The two draw different streams for one seed (different generators); each is
     * reproducible.
     */
    public List<int[]> sample(List<int[]> prompts, int length, double temperature, long seed) {
        if (length <= 0) throw new IllegalArgumentException("length: expected > 0, got " + length);
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature: expected a finite value > 0, got " + temperature);
        }
        if (runsOnDevice()) {
            try (DeviceStepModel m = deviceStepModel(prompts)) {
                return dev.recur.nn.decode.DeviceDecoding.sample(m, lastTokens(prompts), -1, length, temperature, seed, false).tokens();
            }
        }
        return new dev.recur.nn.decode.Sampler(temperature, seed).decode(stepModel(prompts), lastTokens(prompts), -1, length).tokens();
    }

    /** {@link #sample} with the most likely token at every step (greedy; ties to the lower id). */
    public List<int[]> greedy(List<int[]> prompts, int length) {
        if (length <= 0) throw new IllegalArgumentException("length: expected > 0, got " + length);
        if (runsOnDevice()) {
            try (DeviceStepModel m = deviceStepModel(prompts)) {
                return dev.recur.nn.decode.DeviceDecoding.greedy(m, lastTokens(prompts), -1, length, false).tokens();
            }
        }
        return dev.recur.nn.decode.Greedy.decode(stepModel(prompts), lastTokens(prompts), -1, length).tokens();
    }

    /** The last token of each prompt: the start tokens for decoding from {@link #stepModel}. */
    public static int[] lastTokens(List<int[]> prompts) {
        int[] t = new int[prompts.size()];
        for (int i = 0; i < t.length; i++) t[i] = prompts.get(i)[prompts.get(i).length - 1];
        return t;
    }

    private record State(Tensor h, Tensor c) implements DecoderState {
        @Override
        public int rows() {
            return h.dim(1);
        }

        @Override
        public DecoderState select(int[] rows) {
            return new State(gather(h, rows), c == null ? null : gather(c, rows));
        }
    }

    private static Tensor gather(Tensor x, int[] rows) {
        int l = x.dim(0), n = x.dim(1), w = x.dim(2);
        Tensor out = Tensor.zeros(l, rows.length, w);
        for (int k = 0; k < l; k++) {
            for (int i = 0; i < rows.length; i++) {
                if (rows[i] < 0 || rows[i] >= n) throw new IllegalArgumentException("rows: entry " + i + " must be in [0, " + n + "), got " + rows[i]);
                System.arraycopy(x.data(), (k * n + rows[i]) * w, out.data(), (k * rows.length + i) * w, w);
            }
        }
        return out;
    }

    private final class Stepper implements StepModel {
        private final Tensor h0;
        private final Tensor c0;

        Stepper(Tensor h0, Tensor c0) {
            this.h0 = h0;
            this.c0 = c0;
        }

        @Override
        public int batchSize() {
            return h0.dim(1);
        }

        @Override
        public int vocabSize() {
            return vocab;
        }

        @Override
        public DecoderState start(int k) {
            if (k <= 0) throw new IllegalArgumentException("rowsPerItem: expected > 0, got " + k);
            int[] rows = new int[batchSize() * k];
            for (int r = 0; r < rows.length; r++) rows[r] = r / k;
            return new State(gather(h0, rows), c0 == null ? null : gather(c0, rows));
        }

        @Override
        public Step step(int[] tokens, DecoderState state) {
            if (!(state instanceof State s)) throw new IllegalArgumentException("state: not a state of this model");
            pullFromTrainer();
            int n = s.rows();
            if (tokens == null || tokens.length != n) {
                throw new IllegalArgumentException("tokens: expected " + n + " entries, got " + (tokens == null ? "null" : tokens.length));
            }
            try (RnnOutput out = rnn.forward(new RnnInput(embedding.forward(tokens, 1, n), s.h, s.c, null))) {
                Tensor logits = output.forward(out.y()).reshape(n, vocab);
                return new Step(logits, new State(out.hN(), out.cN()), null);
            }
        }
    }

    /** Writes the parameters (F64, bit-exact on reload) with the configuration as metadata. */
    public void save(Path file) throws IOException {
        save(file, Map.of());
    }

    /**
     * As {@link #save(Path)} with extra metadata entries (e.g. the vocabulary of the caller's tokenizer); keys
     * starting with {@code lm.} or {@code rnn.} are reserved.
     */
    public void save(Path file, Map<String, String> extra) throws IOException {
        if (extra == null) throw new IllegalArgumentException("extra: must not be null");
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", FORMAT);
        m.put("lm.vocab", Integer.toString(vocab));
        m.put("lm.embeddingSize", Integer.toString(embedding.dim()));
        m.put("lm.padId", Integer.toString(padId));
        m.putAll(ConfigMetadata.encode("rnn", rnnConfig));
        for (Map.Entry<String, String> e : extra.entrySet()) {
            if (m.containsKey(e.getKey()) || e.getKey().startsWith("lm.") || e.getKey().startsWith("rnn.")) {
                throw new IllegalArgumentException("extra: key '" + e.getKey() + "' is reserved");
            }
            m.put(e.getKey(), e.getValue());
        }
        pullFromTrainer();
        params.save(file, DType.F64, m);
    }

    /** Rebuilds a model from a checkpoint written by {@link #save} (configuration from its metadata) on {@code backend}. */
    public static LanguageModel open(Path file, Backend backend) throws IOException {
        if (file == null) throw new IllegalArgumentException("file: must not be null");
        SafeTensors st = SafeTensors.read(file);
        Map<String, String> m = st.metadata();
        if (!FORMAT.equals(m.get("format"))) {
            throw new IllegalArgumentException(file + ": expected a checkpoint with metadata format '" + FORMAT + "', got '" + m.get("format") + "'");
        }
        LanguageModel lm = create(ConfigMetadata.integer(m, "lm.vocab"), ConfigMetadata.integer(m, "lm.embeddingSize"),
                ConfigMetadata.decode("rnn", m), ConfigMetadata.integer(m, "lm.padId"), backend, 0);
        try {
            lm.params.copyFrom(st.floatTensors());
        } catch (RuntimeException e) {
            lm.close();
            throw e;
        }
        return lm;
    }

    /** The metadata format tag of language-model checkpoints. */
    public static final String FORMAT = "recur-language-model";

    /** Loads a checkpoint of a model of the same shape. */
    public void load(Path file) throws IOException {
        pullFromTrainer();   // so that a failed load leaves the mirror current; a good one is uploaded by the next step
        params.load(file);
    }

    @Override
    public void close() {
        try {
            if (trainer != null) trainer.close();
        } finally {
            try {
                closeOwnWeights();
            } finally {
                rnn.close();
            }
        }
    }
}
