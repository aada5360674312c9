package dev.recur.nn.seq2seq;

import dev.recur.backend.Backend;
import dev.recur.backend.TrainKernels;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.RnnInput;
import dev.recur.nn.attention.Attention;
import dev.recur.nn.decode.BeamSearch;
import dev.recur.nn.decode.Decoded;
import dev.recur.nn.decode.DeviceDecoding;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.decode.DecoderState;
import dev.recur.nn.decode.Greedy;
import dev.recur.nn.decode.StepModel;
import dev.recur.nn.layers.Activations;
import dev.recur.nn.layers.ConfigMetadata;
import dev.recur.nn.layers.Embedding;
import dev.recur.nn.layers.Linear;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.RecurrentLayer;
import dev.recur.nn.layers.SoftmaxCrossEntropy;
import dev.recur.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * An encoder-decoder network with attention (see {@link Seq2SeqConfig}, {@link AttentionStyle}, {@link Bridge}):
 * source embedding → encoder {@code Rnn} → bridge → decoder {@code Rnn} (+ attention over the encoder outputs)
 * → {@code tanh(W_c [h; c])} → output logits. The recurrent parts and attention run on the backend given at
 * creation; on this class's host paths ({@link #forwardBackward}, {@link #stepModel}, {@link #beamSearch}) embeddings,
 * the bridge and the output layers run on the host in float64.
 *
 * <p>Which shapes run wholly on the device ({@link #runsOnDevice()}): on a device backend, every configuration: any
 * attention style (none; Luong; Bahdanau, as a per-step loop with its backward through time on the device) with any
 * score (dot, scaled, general, additive: the general and additive parameters train on the device too), any
 * {@link Bridge} (per decoder layer, with the LSTM cell-state bridge when both networks are LSTMs), and any encoder and
 * decoder network (cell, layers, directions, encoder projection). For those, {@link Seq2SeqTrainer} steps with Adam,
 * AdamW or SGD on the device, with teacher forcing or scheduled sampling (teacher forcing below 1: the decoder runs
 * step by step there and {@code scheduled_feed} chooses each input), and {@link #greedy}, {@link #greedyTokens} and
 * {@link #deviceStepModel} decode there. Optimizers without a configuration, and every model on the reference backend,
 * use the host paths.
 *
 * <p>Training ({@link #forwardBackward}): cross-entropy of the next target token, averaged over the
 * non-padded target positions, and the gradient of every parameter accumulated into {@link #parameters()}.
 * With teacher-forcing probability 1 and Luong (or no) attention the decoder runs all target steps in one
 * call; otherwise (Bahdanau, or scheduled sampling where each item's input at step {@code u} is the true
 * previous token with that probability and else the model's own argmax prediction) it runs one step per call,
 * chaining the states forward and their gradients backward. Sampled tokens are treated as constants. The coin of
 * item {@code i} at decoder step {@code u >= 1} is {@code TrainKernels.sampleUniform(seed ^ 0x5DEECE66DL, u, i) <
 * teacherForcing} ({@link #samplingSeed}): counter-based, so the device's {@code scheduled_feed} flips the same coins
 * for the same seed and the host and device steps feed the same tokens wherever their argmax agrees.
 * Dropout: the encoder uses {@code seed}, every decoder call {@code seed + 1} (so a per-step decoder keeps
 * one variational mask per sequence).
 *
 * <p>Parameter names: {@code source_embedding.weight}, {@code target_embedding.weight},
 * {@code encoder.<pytorch rnn names>}, {@code decoder.<pytorch rnn names>}, {@code bridge_h_l{k}.weight/bias},
 * {@code bridge_c_l{k}.weight/bias}, {@code attention.<W_a | W1, W2, v>}, {@code combine.weight/bias},
 * {@code output.weight/bias}.
 *
 * <pre>{@code
 * Seq2SeqConfig cfg = Seq2SeqConfig.builder(srcVocab, tgtVocab).embedding(16)
 *         .encoder(CellType.GRU, 32, 1, true).decoder(CellType.GRU, 64, 1)
 *         .attention(AttentionStyle.LUONG, AttentionScore.DOT).tokens(PAD, BOS, EOS).build();
 * try (Backend be = Backends.openBest(); Seq2Seq model = Seq2Seq.create(cfg, be, 42)) {
 *     Seq2SeqTrainer trainer = new Seq2SeqTrainer(model, new Adam(0.01), SamplingSchedule.constant(1), 5.0, 42);
 *     for (int step = 0; step < 600; step++) trainer.step(Seq2SeqBatch.of(sources(step), targets(step), PAD, EOS));
 *     Decoded out = model.beamSearch(testSources, new BeamSearch(4, 0.6, 20));
 *     model.save(Path.of("model.safetensors"));      // Seq2Seq.open(path, backend) rebuilds it
 * }
 * }</pre>
 *
 * <p>Not thread-safe. Close to release the networks' device memory.
 */
public final class Seq2Seq implements AutoCloseable {
    private final Seq2SeqConfig config;
    private final Parameters params = new Parameters();
    private final Embedding sourceEmbedding;
    private final Embedding targetEmbedding;
    private final RecurrentLayer encoder;
    private final RecurrentLayer decoder;
    private final Linear[] bridgeH;
    private final Linear[] bridgeC;
    private final Attention attention;
    private final AttentionWeights attentionWeights;
    private final Linear combine;
    private final Linear output;
    private long attentionSynced = -1;

    private Seq2Seq(Seq2SeqConfig c, Backend backend, long seed) {
        this.config = c;
        SplittableRandom seeds = new SplittableRandom(seed);
        sourceEmbedding = new Embedding(params, "source_embedding", c.sourceVocab(), c.embeddingSize(), c.padId(), seeds.nextLong());
        targetEmbedding = new Embedding(params, "target_embedding", c.targetVocab(), c.embeddingSize(), c.padId(), seeds.nextLong());
        RecurrentLayer enc = null, dec = null;
        Attention att = null;
        try {
            enc = new RecurrentLayer(params, "encoder", c.encoder(), backend, seeds.nextLong());
            dec = new RecurrentLayer(params, "decoder", c.decoder(), backend, seeds.nextLong());
            int ld = c.decoder().numLayers(), de = c.encoder().directions();
            bridgeH = new Linear[ld];
            bridgeC = new Linear[ld];
            if (c.bridge() == Bridge.LINEAR_TANH) {
                for (int l = 0; l < ld; l++) {
                    bridgeH[l] = new Linear(params, "bridge_h_l" + l, de * c.encoder().outSize(), c.decoder().hiddenSize(), true, seeds.nextLong());
                    if (lstmToLstm()) {
                        bridgeC[l] = new Linear(params, "bridge_c_l" + l, de * c.encoder().hiddenSize(), c.decoder().hiddenSize(), true,
                                seeds.nextLong());
                    }
                }
            }
            AttentionConfig ac = c.attentionConfig();
            if (ac != null) {
                attentionWeights = AttentionWeights.init(ac, seeds.nextLong());
                for (Map.Entry<String, Tensor> e : attentionWeights.asMap().entrySet()) params.add("attention." + e.getKey(), e.getValue());
                att = Attention.create(ac, backend, attentionWeights);
            } else {
                attentionWeights = null;
            }
            int combIn = c.decoder().hiddenSize() + (ac == null ? 0 : c.encoder().outputWidth());
            combine = new Linear(params, "combine", combIn, c.combineSize(), true, seeds.nextLong());
            output = new Linear(params, "output", c.combineSize(), c.targetVocab(), true, seeds.nextLong());
        } catch (RuntimeException | Error e) {
            if (enc != null) enc.close();
            if (dec != null) dec.close();
            if (att != null) att.close();
            throw e;
        }
        this.encoder = enc;
        this.decoder = dec;
        this.attention = att;
    }

    /** A model with seeded initial weights, bound to {@code backend} (reference or any backend that runs both Rnn and attention). */
    public static Seq2Seq create(Seq2SeqConfig config, Backend backend, long seed) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        return new Seq2Seq(config, backend, seed);
    }

    public Seq2SeqConfig config() {
        return config;
    }

    /**
     * Every trainable tensor with its gradient; optimizers step these, checkpoints save them. While a
     * {@link Seq2SeqTrainer} trains on the device they are its host mirror: this call downloads them first when a step
     * changed them.
     */
    public Parameters parameters() {
        pullFromDevice();
        return params;
    }

    // The device trainer's state, when a Seq2SeqTrainer steps on the device (null otherwise).
    private Seq2SeqDeviceStep deviceStep;

    /** The device step of this model, made on first use; null when the model cannot train on its backend's device. */
    Seq2SeqDeviceStep deviceStep() {
        if (deviceStep == null && Seq2SeqDeviceStep.supports(this)) deviceStep = new Seq2SeqDeviceStep(this);
        return deviceStep;
    }

    private void pullFromDevice() {
        if (deviceStep != null) deviceStep.pullIfChanged();
    }

    Parameters hostParameters() {
        return params;
    }

    RecurrentLayer encoderLayer() {
        return encoder;
    }

    RecurrentLayer decoderLayer() {
        return decoder;
    }

    Attention attentionModule() {
        return attention;
    }

    void markAttentionCurrent() {
        attentionSynced = params.version();
    }

    private boolean lstmToLstm() {
        return config.encoder().cell() == CellType.LSTM && config.decoder().cell() == CellType.LSTM;
    }

    private boolean decoderLstm() {
        return config.decoder().cell() == CellType.LSTM;
    }

    private void syncAttention() {
        if (attention != null && attentionSynced != params.version()) {
            attention.setWeights(attentionWeights);
            attentionSynced = params.version();
        }
    }

    /**
     * @param loss    mean cross-entropy per non-padded target token
     * @param tokens  non-padded target tokens counted
     * @param correct of those, how many the model ranked first; -1 when not counted (a device step, unless
     *                {@link Seq2SeqTrainer#countCorrect} asked for it)
     */
    public record Loss(double loss, int tokens, int correct) {
        /** correct / tokens; NaN when the correct tokens were not counted. */
        public double tokenAccuracy() {
            if (correct < 0) return Double.NaN;
            return tokens == 0 ? 0 : correct / (double) tokens;
        }
    }

    /**
     * Forward and backward of one batch: the gradients are added to {@link #parameters()} (zero them first).
     *
     * @param teacherForcing probability in [0, 1] of feeding the true previous token (1 = teacher forcing)
     * @param seed           dropout and scheduled-sampling seed
     */
    public Loss forwardBackward(Seq2SeqBatch batch, double teacherForcing, long seed) {
        return run(batch, teacherForcing, seed, true);
    }

    /** The same loss as {@link #forwardBackward} without the backward pass (nothing accumulated). */
    public Loss loss(Seq2SeqBatch batch, double teacherForcing, long seed) {
        return run(batch, teacherForcing, seed, false);
    }

    /** The metadata format tag of seq2seq checkpoints. */
    public static final String FORMAT = "recur-seq2seq";

    /**
     * Writes every parameter to a safetensors checkpoint ({@link DType#F64}: reloads bit-exactly), with the
     * configuration in its metadata so that {@link #open} can rebuild the model.
     */
    public void save(Path file) throws IOException {
        save(file, Map.of());
    }

    /**
     * As {@link #save(Path)} with extra metadata entries (e.g. the caller's vocabularies); keys starting with
     * {@code s2s.}, {@code encoder.} or {@code decoder.} are reserved.
     */
    public void save(Path file, Map<String, String> extra) throws IOException {
        if (extra == null) throw new IllegalArgumentException("extra: must not be null");
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", FORMAT);
        m.put("s2s.sourceVocab", Integer.toString(config.sourceVocab()));
        m.put("s2s.targetVocab", Integer.toString(config.targetVocab()));
        m.put("s2s.embeddingSize", Integer.toString(config.embeddingSize()));
        m.put("s2s.style", config.style().name());
        m.put("s2s.score", config.score() == null ? "" : config.score().name());
        m.put("s2s.attentionSize", Integer.toString(config.attentionSize()));
        m.put("s2s.combineSize", Integer.toString(config.combineSize()));
        m.put("s2s.bridge", config.bridge().name());
        m.put("s2s.padId", Integer.toString(config.padId()));
        m.put("s2s.bosId", Integer.toString(config.bosId()));
        m.put("s2s.eosId", Integer.toString(config.eosId()));
        m.putAll(ConfigMetadata.encode("encoder", config.encoder()));
        m.putAll(ConfigMetadata.encode("decoder", config.decoder()));
        for (Map.Entry<String, String> e : extra.entrySet()) {
            String k = e.getKey();
            if (m.containsKey(k) || k.startsWith("s2s.") || k.startsWith("encoder.") || k.startsWith("decoder.")) {
                throw new IllegalArgumentException("extra: key '" + k + "' is reserved");
            }
            m.put(k, e.getValue());
        }
        pullFromDevice();
        params.save(file, DType.F64, m);
    }

    /** Rebuilds a model from a checkpoint written by {@link #save} (configuration from its metadata) on {@code backend}. */
    public static Seq2Seq open(Path file, Backend backend) throws IOException {
        if (file == null) throw new IllegalArgumentException("file: must not be null");
        SafeTensors st = SafeTensors.read(file);
        Map<String, String> m = st.metadata();
        if (!FORMAT.equals(m.get("format"))) {
            throw new IllegalArgumentException(file + ": expected a checkpoint with metadata format '" + FORMAT + "', got '" + m.get("format") + "'");
        }
        String score = ConfigMetadata.get(m, "s2s.score");
        Seq2SeqConfig c = new Seq2SeqConfig(ConfigMetadata.integer(m, "s2s.sourceVocab"), ConfigMetadata.integer(m, "s2s.targetVocab"),
                ConfigMetadata.integer(m, "s2s.embeddingSize"), ConfigMetadata.decode("encoder", m), ConfigMetadata.decode("decoder", m),
                AttentionStyle.valueOf(ConfigMetadata.get(m, "s2s.style")), score.isEmpty() ? null : AttentionScore.valueOf(score),
                ConfigMetadata.integer(m, "s2s.attentionSize"), ConfigMetadata.integer(m, "s2s.combineSize"),
                Bridge.valueOf(ConfigMetadata.get(m, "s2s.bridge")), ConfigMetadata.integer(m, "s2s.padId"),
                ConfigMetadata.integer(m, "s2s.bosId"), ConfigMetadata.integer(m, "s2s.eosId"));
        Seq2Seq model = create(c, backend, 0);
        try {
            model.params.copyFrom(st.floatTensors());
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        return model;
    }

    /** Loads a checkpoint of a model of the same configuration (names and shapes checked before anything changes). */
    public void load(Path file) throws IOException {
        pullFromDevice();
        params.load(file);
    }

    // ---------------------------------------------------------------------------------------------
    // Encoder and bridge

    private record BridgeOut(Tensor h0, Tensor c0, Tensor[] srcH, Tensor[] srcC, Tensor[] outH, Tensor[] outC) {}

    private int encoderLayerFor(int l) {
        return Math.max(0, l + config.encoder().numLayers() - config.decoder().numLayers());
    }

    /** [B, D*w]: the directions of encoder layer e concatenated. */
    private static Tensor directions(Tensor state, int e, int d, int b, int w) {
        Tensor s = Tensor.zeros(b, d * w);
        for (int dir = 0; dir < d; dir++) {
            for (int bi = 0; bi < b; bi++) System.arraycopy(state.data(), ((e * d + dir) * b + bi) * w, s.data(), bi * d * w + dir * w, w);
        }
        return s;
    }

    private BridgeOut bridgeForward(Tensor hN, Tensor cN, int b) {
        RnnConfig ec = config.encoder();
        int ld = config.decoder().numLayers(), hd = config.decoder().hiddenSize(), de = ec.directions();
        Tensor h0 = Tensor.zeros(ld, b, hd);
        Tensor c0 = decoderLstm() ? Tensor.zeros(ld, b, hd) : null;
        Tensor[] srcH = new Tensor[ld], srcC = new Tensor[ld], outH = new Tensor[ld], outC = new Tensor[ld];
        if (config.bridge() == Bridge.ZERO) return new BridgeOut(h0, c0, srcH, srcC, outH, outC);
        boolean withC = lstmToLstm();
        for (int l = 0; l < ld; l++) {
            int e = encoderLayerFor(l);
            if (config.bridge() == Bridge.LINEAR_TANH) {
                srcH[l] = directions(hN, e, de, b, ec.outSize());
                outH[l] = Activations.tanh(bridgeH[l].forward(srcH[l]));
                System.arraycopy(outH[l].data(), 0, h0.data(), l * b * hd, b * hd);
                if (withC) {
                    srcC[l] = directions(cN, e, de, b, ec.hiddenSize());
                    outC[l] = Activations.tanh(bridgeC[l].forward(srcC[l]));
                    System.arraycopy(outC[l].data(), 0, c0.data(), l * b * hd, b * hd);
                }
            } else {
                for (int dir = 0; dir < de; dir++) {
                    for (int i = 0; i < b * hd; i++) {
                        h0.data()[l * b * hd + i] += hN.data()[(e * de + dir) * b * hd + i];
                        if (withC) c0.data()[l * b * hd + i] += cN.data()[(e * de + dir) * b * hd + i];
                    }
                }
            }
        }
        return new BridgeOut(h0, c0, srcH, srcC, outH, outC);
    }

    /** Gradients of the encoder's final states {dhN, dcN} from those of the decoder's initial states. */
    private Tensor[] bridgeBackward(BridgeOut br, Tensor dh0, Tensor dc0, int b) {
        RnnConfig ec = config.encoder();
        int ld = config.decoder().numLayers(), hd = config.decoder().hiddenSize(), de = ec.directions();
        int le = ec.numLayers();
        Tensor dhN = Tensor.zeros(le * de, b, ec.outSize());
        Tensor dcN = ec.cell() == CellType.LSTM ? Tensor.zeros(le * de, b, ec.hiddenSize()) : null;
        if (config.bridge() == Bridge.ZERO) return new Tensor[] {dhN, dcN};
        boolean withC = lstmToLstm();
        for (int l = 0; l < ld; l++) {
            int e = encoderLayerFor(l);
            if (config.bridge() == Bridge.LINEAR_TANH) {
                Tensor g = Tensor.of(Arrays.copyOfRange(dh0.data(), l * b * hd, (l + 1) * b * hd), b, hd);
                Tensor ds = bridgeH[l].backward(br.srcH[l], Activations.tanhBackward(br.outH[l], g));
                scatterDirections(ds, dhN, e, de, b, ec.outSize());
                if (withC) {
                    Tensor gc = Tensor.of(Arrays.copyOfRange(dc0.data(), l * b * hd, (l + 1) * b * hd), b, hd);
                    Tensor dsc = bridgeC[l].backward(br.srcC[l], Activations.tanhBackward(br.outC[l], gc));
                    scatterDirections(dsc, dcN, e, de, b, ec.hiddenSize());
                }
            } else {
                for (int dir = 0; dir < de; dir++) {
                    for (int i = 0; i < b * hd; i++) {
                        dhN.data()[(e * de + dir) * b * hd + i] += dh0.data()[l * b * hd + i];
                        if (withC) dcN.data()[(e * de + dir) * b * hd + i] += dc0.data()[l * b * hd + i];
                    }
                }
            }
        }
        return new Tensor[] {dhN, dcN};
    }

    private static void scatterDirections(Tensor ds, Tensor dState, int e, int d, int b, int w) {
        for (int dir = 0; dir < d; dir++) {
            for (int bi = 0; bi < b; bi++) {
                for (int j = 0; j < w; j++) dState.data()[((e * d + dir) * b + bi) * w + j] += ds.data()[bi * d * w + dir * w + j];
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Decoder segments: S steps run in one Rnn call (S = U for Luong with teacher forcing, else 1)

    private static final class Segment {
        int[] tokens;      // [S*B] decoder input ids
        Tensor query;      // Bahdanau: [1,B,Hd] the previous top-layer state
        Tensor ctx;        // [S,B,He] or null
        RnnOutput out;     // the decoder call (with trace)
        Tensor combIn;     // [S,B,Hd(+He)]
        Tensor comb;       // [S,B,C]
        Tensor logits;     // [S,B,V]
    }

    /** The top layer of a [L, B, H] state as [1, B, H]. */
    private static Tensor topLayer(Tensor state) {
        int l = state.dim(0), b = state.dim(1), h = state.dim(2);
        return Tensor.of(Arrays.copyOfRange(state.data(), (l - 1) * b * h, l * b * h), 1, b, h);
    }

    private Segment segmentForward(int[] tokens, int steps, int b, Tensor h, Tensor c, Tensor encY, Tensor mask, long seed,
                                   boolean training) {
        Segment s = new Segment();
        s.tokens = tokens;
        Tensor x = targetEmbedding.forward(tokens, steps, b);
        if (config.style() == AttentionStyle.BAHDANAU) {
            s.query = topLayer(h);
            s.ctx = attention.forward(s.query, encY, mask).context();
            x = Activations.concatLast(x, s.ctx);
        }
        RnnInput in = new RnnInput(x, h, c, null);
        s.out = training ? decoder.forwardTraining(in, seed) : decoder.forward(in);
        Tensor y = s.out.y();
        if (config.style() == AttentionStyle.LUONG) s.ctx = attention.forward(y, encY, mask).context();
        s.combIn = s.ctx == null ? y : Activations.concatLast(y, s.ctx);
        s.comb = Activations.tanh(combine.forward(s.combIn));
        s.logits = output.forward(s.comb);
        return s;
    }

    /** Backward of one segment; returns the gradients {dh, dc} of its initial state and adds into dEnc. */
    private Tensor[] segmentBackward(Segment s, Tensor dlogits, Tensor dhN, Tensor dcN, Tensor encY, Tensor mask, Tensor dEnc) {
        int hd = config.decoder().hiddenSize(), e = config.embeddingSize();
        Tensor dcomb = output.backward(s.comb, dlogits);
        Tensor dcombIn = combine.backward(s.combIn, Activations.tanhBackward(s.comb, dcomb));
        Tensor y = s.out.y();
        Tensor dy = s.ctx == null ? dcombIn : Activations.sliceLast(dcombIn, 0, hd);
        Tensor dctx = s.ctx == null ? null : Activations.sliceLast(dcombIn, hd, s.ctx.dim(2));
        if (config.style() == AttentionStyle.LUONG) {
            AttentionGradients ag = attention.backward(y, encY, mask, dctx);
            Activations.addInto(dy, ag.ddec());
            accumulateAttention(ag, dEnc);
        }
        RnnGradients g = decoder.backward(s.out, dy, dhN, dcN);
        Tensor dx = g.dx();
        Tensor dh0 = g.dh0();
        if (config.style() == AttentionStyle.BAHDANAU) {
            targetEmbedding.backward(s.tokens, Activations.sliceLast(dx, 0, e));
            Activations.addInto(dctx, Activations.sliceLast(dx, e, s.ctx.dim(2)));
            AttentionGradients ag = attention.backward(s.query, encY, mask, dctx);
            accumulateAttention(ag, dEnc);
            int l = dh0.dim(0), b = dh0.dim(1);
            double[] q = ag.ddec().data();
            for (int i = 0; i < b * hd; i++) dh0.data()[(l - 1) * b * hd + i] += q[i];
        } else {
            targetEmbedding.backward(s.tokens, dx);
        }
        return new Tensor[] {dh0, g.dc0()};
    }

    private void accumulateAttention(AttentionGradients ag, Tensor dEnc) {
        Activations.addInto(dEnc, ag.denc());
        for (Map.Entry<String, Tensor> w : ag.dweights().entrySet()) params.accumulate("attention." + w.getKey(), w.getValue());
    }

    private Loss run(Seq2SeqBatch batch, double teacherForcing, long seed, boolean backward) {
        if (batch == null) throw new IllegalArgumentException("batch: must not be null");
        pullFromDevice();
        if (!(teacherForcing >= 0 && teacherForcing <= 1)) {
            throw new IllegalArgumentException("teacherForcing: expected a probability in [0, 1], got " + teacherForcing);
        }
        checkIds("batch.source", batch.source(), config.sourceVocab());
        checkIds("batch.target", batch.target(), config.targetVocab());
        syncAttention();
        int t = batch.sourceSteps(), b = batch.batch(), u = batch.targetSteps(), v = config.targetVocab();
        Tensor xs = sourceEmbedding.forward(batch.source(), t, b);
        List<Segment> segments = new ArrayList<>();
        try (RnnOutput enc = encoder.forwardTraining(new RnnInput(xs, null, null, batch.sourceLengths()), seed)) {
            Tensor encY = enc.y();
            Tensor mask = attention == null ? null : Attention.maskFromLengths(batch.sourceLengths(), t);
            BridgeOut br = bridgeForward(enc.hN(), enc.cN(), b);
            Tensor logits = Tensor.zeros(u, b, v);
            try {
                boolean parallel = config.style() != AttentionStyle.BAHDANAU && teacherForcing >= 1;
                if (parallel) {
                    int[] in = new int[u * b];
                    Arrays.fill(in, 0, b, config.bosId());
                    System.arraycopy(batch.target(), 0, in, b, (u - 1) * b);
                    Segment s = segmentForward(in, u, b, br.h0, br.c0, encY, mask, seed + 1, true);
                    segments.add(s);
                    System.arraycopy(s.logits.data(), 0, logits.data(), 0, u * b * v);
                } else {
                    long coin = samplingSeed(seed);
                    Tensor h = br.h0, c = br.c0;
                    int[] prev = null;
                    for (int step = 0; step < u; step++) {
                        int[] in = new int[b];
                        for (int i = 0; i < b; i++) {
                            if (step == 0) in[i] = config.bosId();
                            else in[i] = teacherForcing >= 1 || TrainKernels.sampleUniform(coin, step, i) < teacherForcing ? batch.target(step - 1, i) : prev[i];
                        }
                        Segment s = segmentForward(in, 1, b, h, c, encY, mask, seed + 1, true);
                        segments.add(s);
                        System.arraycopy(s.logits.data(), 0, logits.data(), step * b * v, b * v);
                        prev = Activations.argmax(s.logits);
                        h = s.out.hN();
                        c = s.out.cN();
                    }
                }
                SoftmaxCrossEntropy.Result ce = SoftmaxCrossEntropy.compute(logits, batch.target(), config.padId());
                if (backward) {
                    Tensor dEnc = Tensor.zeros(encY.shape());
                    int ld = config.decoder().numLayers(), hd = config.decoder().hiddenSize();
                    Tensor dh = Tensor.zeros(ld, b, hd);
                    Tensor dc = decoderLstm() ? Tensor.zeros(ld, b, hd) : null;
                    int end = u;
                    for (int i = segments.size() - 1; i >= 0; i--) {
                        Segment s = segments.get(i);
                        int steps = s.logits.dim(0);
                        int start = end - steps;
                        Tensor dl = Tensor.of(Arrays.copyOfRange(ce.dlogits().data(), start * b * v, end * b * v), steps, b, v);
                        Tensor[] d = segmentBackward(s, dl, dh, dc, encY, mask, dEnc);
                        dh = d[0];
                        dc = d[1];
                        end = start;
                    }
                    Tensor[] dEncState = bridgeBackward(br, dh, dc, b);
                    RnnGradients g = encoder.backward(enc, dEnc, dEncState[0], dEncState[1]);
                    sourceEmbedding.backward(batch.source(), g.dx());
                }
                return new Loss(ce.loss(), ce.count(), ce.correct());
            } finally {
                for (Segment s : segments) s.out.close();
            }
        }
    }

    /**
     * The seed of scheduled sampling's coins for a step of dropout seed {@code seed}: set apart from the dropout seeds
     * ({@code seed}, {@code seed + 1}) by a constant, the host and the device alike.
     */
    static long samplingSeed(long seed) {
        return seed ^ 0x5DEECE66DL;
    }

    private static void checkIds(String name, int[] ids, int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) throw new IllegalArgumentException(name + ": entry " + i + " must be in [0, " + vocab + "), got " + ids[i]);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Inference

    /**
     * Encodes {@code sources} (inference mode) and returns the decoder as a {@link StepModel} for
     * {@link Greedy}, {@link dev.recur.nn.decode.Sampler} and {@link BeamSearch}; its steps report the
     * attention weights {@code [rows, T]} (null without attention).
     */
    public StepModel stepModel(List<int[]> sources) {
        pullFromDevice();
        syncAttention();
        if (sources == null) throw new IllegalArgumentException("sources: must not be null");
        Seq2SeqBatch batch = Seq2SeqBatch.of(sources, sources.stream().map(s -> new int[0]).toList(), config.padId(), config.eosId());
        checkIds("sources", batch.source(), config.sourceVocab());
        int t = batch.sourceSteps(), b = batch.batch();
        Tensor xs = sourceEmbedding.forward(batch.source(), t, b);
        try (RnnOutput enc = encoder.forward(new RnnInput(xs, null, null, batch.sourceLengths()))) {
            BridgeOut br = bridgeForward(enc.hN(), enc.cN(), b);
            return new Stepper(enc.y(), batch.sourceLengths(), br.h0, br.c0);
        }
    }

    /**
     * Greedy decoding of each source (at most {@code maxLength} tokens), with the log-probabilities and attention
     * weights. For a model that trains on the device ({@link Seq2SeqTrainer}) on a device backend, the whole decoding
     * runs there: the host sends the source ids (the device derives lengths and mask from them) and reads back the
     * tokens, their log-probabilities and the attention weights once (a batch with a source ending in the padding id,
     * whose length the padded ids cannot tell, also sends the lengths and mask).
     */
    public Decoded greedy(List<int[]> sources, int maxLength) {
        return greedy(sources, maxLength, true);
    }

    /**
     * Greedy decoding of each source that returns the tokens and finished flags only: {@code logProb}, {@code score}
     * and {@code attention} of the result are null. On the device (see {@link #greedy(List, int)}) only the output
     * ids come back; on the host it is {@link #greedy(List, int)} without the rest.
     */
    public Decoded greedyTokens(List<int[]> sources, int maxLength) {
        return greedy(sources, maxLength, false);
    }

    private Decoded greedy(List<int[]> sources, int maxLength, boolean details) {
        if (sources == null) throw new IllegalArgumentException("sources: must not be null");
        if (maxLength <= 0) throw new IllegalArgumentException("maxLength: expected > 0, got " + maxLength);
        Seq2SeqDeviceStep device = deviceStep();
        if (device != null) {
            Seq2SeqBatch batch = Seq2SeqBatch.of(sources, sources.stream().map(s -> new int[0]).toList(), config.padId(), config.eosId());
            checkIds("sources", batch.source(), config.sourceVocab());
            try (Seq2SeqDeviceStep.Decoder decoder = device.decoder(batch)) {
                int[] starts = new int[batch.batch()];
                java.util.Arrays.fill(starts, config.bosId());
                return DeviceDecoding.greedy(decoder, starts, config.eosId(), maxLength, details);
            }
        }
        Decoded d = Greedy.decode(stepModel(sources), config.bosId(), config.eosId(), maxLength);
        return details ? d : new Decoded(d.tokens(), d.finished(), null, null, null);
    }

    /**
     * Ancestral sampling of each source at {@code temperature} (at most {@code maxLength} tokens), with the
     * log-probabilities (untempered) and attention weights. On the device ({@link #runsOnDevice()}) every step runs
     * there ({@link DeviceDecoding#sample}: the source ids up, the results down once); otherwise the host
     * {@link dev.recur.nn.decode.Sampler}. The two draw different streams for one seed (different generators: the
     * device's is counter-based, keyed by seed, step and row); each is reproducible.
     */
    public Decoded sample(List<int[]> sources, double temperature, long seed, int maxLength) {
        if (sources == null) throw new IllegalArgumentException("sources: must not be null");
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature: expected a finite value > 0, got " + temperature);
        }
        if (maxLength <= 0) throw new IllegalArgumentException("maxLength: expected > 0, got " + maxLength);
        if (deviceStep() != null) {
            try (DeviceStepModel decoder = deviceStepModel(sources)) {
                int[] starts = new int[decoder.batchSize()];
                java.util.Arrays.fill(starts, config.bosId());
                return DeviceDecoding.sample(decoder, starts, config.eosId(), maxLength, temperature, seed, true);
            }
        }
        return new dev.recur.nn.decode.Sampler(temperature, seed).decode(stepModel(sources), config.bosId(), config.eosId(), maxLength);
    }

    /**
     * The decoder bound to {@code sources} on the model's device, for {@link DeviceDecoding} (or a decoder of the
     * caller's): the encoder outputs and every state stay on the device. Only for models that run their steps on the
     * device ({@link #runsOnDevice()}); close it to free the encoded sources.
     */
    public DeviceStepModel deviceStepModel(List<int[]> sources) {
        if (sources == null) throw new IllegalArgumentException("sources: must not be null");
        Seq2SeqDeviceStep device = deviceStep();
        if (device == null) {
            throw new IllegalStateException("this model does not decode on the device (runsOnDevice() is false): backend "
                    + encoder.rnn().backend().name() + ", " + config);
        }
        Seq2SeqBatch batch = Seq2SeqBatch.of(sources, sources.stream().map(s -> new int[0]).toList(), config.padId(), config.eosId());
        checkIds("sources", batch.source(), config.sourceVocab());
        return device.decoder(batch);
    }

    /**
     * Whether this model's training steps (an optimizer with a configuration, any teacher forcing) and decoding run on its backend's device: true on
     * every device backend, for every configuration (see the class comment); false on the reference backend, where
     * they run on the host.
     */
    public boolean runsOnDevice() {
        // Asked without making the device step: that would upload every parameter just to answer.
        return deviceStep != null || Seq2SeqDeviceStep.supports(this);
    }

    /**
     * Beam search decoding of each source, with each answer's log-probability, score and attention weights. For a
     * model that runs on the device ({@link #runsOnDevice()}) the whole search runs there
     * ({@link DeviceDecoding#beamSearch}): the host sends the source ids and reads back the answers' tokens, scores and
     * attention once; otherwise {@link BeamSearch#decode} on the host.
     */
    public Decoded beamSearch(List<int[]> sources, BeamSearch search) {
        return beamSearch(sources, search, true);
    }

    /**
     * Beam search decoding of each source that returns the tokens and finished flags only ({@code logProb},
     * {@code score} and {@code attention} null): on the device only the answers' ids come back.
     */
    public Decoded beamSearchTokens(List<int[]> sources, BeamSearch search) {
        return beamSearch(sources, search, false);
    }

    private Decoded beamSearch(List<int[]> sources, BeamSearch search, boolean details) {
        if (sources == null) throw new IllegalArgumentException("sources: must not be null");
        if (search == null) throw new IllegalArgumentException("search: must not be null");
        Seq2SeqDeviceStep device = deviceStep();
        if (device != null) {
            Seq2SeqBatch batch = Seq2SeqBatch.of(sources, sources.stream().map(s -> new int[0]).toList(), config.padId(), config.eosId());
            checkIds("sources", batch.source(), config.sourceVocab());
            try (Seq2SeqDeviceStep.Decoder decoder = device.decoder(batch)) {
                int[] starts = new int[batch.batch()];
                java.util.Arrays.fill(starts, config.bosId());
                return DeviceDecoding.beamSearch(decoder, starts, config.eosId(), search, details);
            }
        }
        Decoded d = search.decode(stepModel(sources), config.bosId(), config.eosId());
        return details ? d : new Decoded(d.tokens(), d.finished(), null, null, null);
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

    /** Rows of dimension 1 of a [L, N, W] tensor. */
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
        private final Tensor encY;
        private final int[] lengths;
        private final Tensor h0;
        private final Tensor c0;
        private Tensor tiledEnc;
        private Tensor tiledMask;
        private int rowsPerItem;

        Stepper(Tensor encY, int[] lengths, Tensor h0, Tensor c0) {
            this.encY = encY;
            this.lengths = lengths;
            this.h0 = h0;
            this.c0 = c0;
        }

        @Override
        public int batchSize() {
            return lengths.length;
        }

        @Override
        public int vocabSize() {
            return config.targetVocab();
        }

        @Override
        public DecoderState start(int k) {
            if (k <= 0) throw new IllegalArgumentException("rowsPerItem: expected > 0, got " + k);
            int b = lengths.length;
            int[] rows = new int[b * k];
            int[] len = new int[b * k];
            for (int r = 0; r < rows.length; r++) {
                rows[r] = r / k;
                len[r] = lengths[r / k];
            }
            rowsPerItem = k;
            tiledEnc = gather(encY, rows);
            tiledMask = attention == null ? null : Attention.maskFromLengths(len, encY.dim(0));
            return new State(gather(h0, rows), c0 == null ? null : gather(c0, rows));
        }

        @Override
        public Step step(int[] tokens, DecoderState state) {
            if (!(state instanceof State s)) throw new IllegalArgumentException("state: not a state of this model");
            int n = s.rows();
            if (tiledEnc == null || tiledEnc.dim(1) != n) {
                throw new IllegalArgumentException("state: expected " + (tiledEnc == null ? "a state from start()" : tiledEnc.dim(1) + " rows")
                        + ", got " + n + " rows (rowsPerItem " + rowsPerItem + ")");
            }
            if (tokens == null || tokens.length != n) {
                throw new IllegalArgumentException("tokens: expected " + n + " entries, got " + (tokens == null ? "null" : tokens.length));
            }
            pullFromDevice();
            syncAttention();
            Tensor x = targetEmbedding.forward(tokens, 1, n);
            AttentionOutput att = null;
            if (config.style() == AttentionStyle.BAHDANAU) {
                att = attention.forward(topLayer(s.h), tiledEnc, tiledMask);
                x = Activations.concatLast(x, att.context());
            }
            try (RnnOutput out = decoder.forward(new RnnInput(x, s.h, s.c, null))) {
                Tensor y = out.y();
                if (config.style() == AttentionStyle.LUONG) att = attention.forward(y, tiledEnc, tiledMask);
                Tensor combIn = att == null ? y : Activations.concatLast(y, att.context());
                Tensor logits = output.forward(Activations.tanh(combine.forward(combIn)));
                Tensor weights = att == null ? null : att.weights().reshape(n, tiledEnc.dim(0));
                return new Step(logits.reshape(n, config.targetVocab()), new State(out.hN(), out.cN()), weights);
            }
        }
    }

    @Override
    public void close() {
        try {
            try {
                if (deviceStep != null) deviceStep.close();
            } finally {
                deviceStep = null;
            }
        } finally {
            closeNetworks();
        }
    }

    private void closeNetworks() {
        try {
            encoder.close();
        } finally {
            try {
                decoder.close();
            } finally {
                if (attention != null) attention.close();
            }
        }
    }
}
