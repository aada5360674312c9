package dev.recur.nn.seq2seq;

import dev.recur.nn.Resources;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Kernels;
import dev.recur.backend.TrainKernels;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.engine.DeviceAttentionGradients;
import dev.recur.engine.DeviceAttentionOutput;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.decode.DeviceDecoding;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.layers.Parameters;
import dev.recur.nn.layers.RecurrentLayer;
import dev.recur.nn.train.DeviceOptimizer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link Seq2SeqTrainer} step with teacher forcing on the device, for the models whose every part has a device
 * kernel here ({@link #supports}): one-layer encoder (either direction count) and one-layer GRU decoder, Luong
 * attention with the dot score (no attention weights), the linear-tanh or zero bridge. Embeddings
 * ({@code embedding_fwd}/{@code _bwd}), the encoder and decoder on device tensors, the bridge, combine and output
 * layers as GEMMs plus {@code bias_act} (the combine layer's [y; context] input never concatenated: two GEMMs over
 * the two column blocks of its weight), {@code softmax_xent_fwd_bwd}, gradients by {@code col_sum} and GEMMs, then
 * a {@link DeviceOptimizer} step (clipping, one update launch per parameter buffer and group). The host uploads source and target ids
 * ({@code source_mask} makes the source lengths and attention mask from the ids; they are uploaded only for a batch
 * whose lengths the padded ids cannot tell) and downloads the 4-byte mean loss.
 *
 * <p>Parameters live on the device while this is open; {@link Seq2Seq#parameters()} and the model's host paths pull
 * them back when a step changed them, and host writes the caller declares are uploaded before the next step.
 */
final class Seq2SeqDeviceStep implements AutoCloseable {
    private final Seq2Seq model;
    private final DeviceBackend be;
    private final Seq2SeqConfig cfg;
    private final List<AutoCloseable> owned = new ArrayList<>();
    /** Host parameter name → device value and gradient (each its own buffer, element 0 = the tensor's). */
    private final Map<String, DeviceBuffer[]> tensors = new LinkedHashMap<>();
    private final WeightSpace encP, decP;
    // What training adds to the values (gradients, the optimizer's state): allocated by the first step, so that a
    // model that only decodes on the device holds its parameters once, not four times.
    private WeightSpace encG, decG;
    private DeviceBuffer mean;
    // Its configuration's; replaced (moments and all) when a step brings another configuration.
    private DeviceOptimizer optimizer;
    private long hostVersion;
    private boolean dirty;

    /** Whether {@code model} on its backend can train here; otherwise the trainer steps on the host. */
    static boolean supports(Seq2Seq model) {
        Seq2SeqConfig c = model.config();
        return model.encoderLayer().rnn().backend() instanceof DeviceBackend
                && c.encoder().numLayers() == 1 && c.decoder().numLayers() == 1
                && c.decoder().cell() == CellType.GRU
                && c.style() == AttentionStyle.LUONG && c.score() == AttentionScore.DOT
                && (c.bridge() == Bridge.LINEAR_TANH || c.bridge() == Bridge.ZERO)
                && c.encoder().outSize() == c.encoder().hiddenSize();
    }

    Seq2SeqDeviceStep(Seq2Seq model) {
        this.model = model;
        this.cfg = model.config();
        this.be = (DeviceBackend) model.encoderLayer().rnn().backend();
        try {
            for (String n : hostTensorNames()) tensors.put(n, new DeviceBuffer[] {f32(model.hostParameters().value(n).size()), null});
            encP = model.encoderLayer().rnn().weightSpace();
            decP = model.decoderLayer().rnn().weightSpace();
            for (WeightSpace w : new WeightSpace[] {encP, decP}) {
                if (w.flat().offset() != 0) throw new IllegalStateException("seq2seq device step: a weight space at offset " + w.flat().offset());
            }
            upload();
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    /**
     * The training state, on the first step (freed with the rest by {@link #close()}), and an optimizer of
     * {@code config} (the one of the earlier steps while the configuration stays equal).
     */
    private void ensureTraining(OptimizerConfig config) {
        if (mean == null) {
            for (DeviceBuffer[] b : tensors.values()) b[1] = f32(b[0].size());
            encG = own(model.encoderLayer().rnn().newGradientSpace(be));
            decG = own(model.decoderLayer().rnn().newGradientSpace(be));
            mean = f32(1);   // last: its presence marks the state complete
        }
        if (optimizer != null && optimizer.config().equals(config)) return;
        DeviceOptimizer old = optimizer;
        optimizer = null;
        if (old != null) old.close();
        DeviceOptimizer o = new DeviceOptimizer(be, config);
        try {
            for (Map.Entry<String, DeviceBuffer[]> e : tensors.entrySet()) {
                DeviceBuffer[] b = e.getValue();
                o.add(e.getKey(), model.hostParameters().value(e.getKey()).shape(), b[0], b[1], 0, b[0].size());
            }
            o.addSpace(model.encoderLayer().prefix(), encP, encG).addSpace(model.decoderLayer().prefix(), decP, decG).prepare();
        } catch (RuntimeException | Error e) {
            o.close();
            throw e;
        }
        optimizer = o;
    }

    /** The parameters outside the two recurrent networks (the dot attention has none). */
    private List<String> hostTensorNames() {
        List<String> names = new ArrayList<>();
        for (String n : model.hostParameters().names()) {
            if (!n.startsWith("encoder.") && !n.startsWith("decoder.")) names.add(n);
        }
        return names;
    }

    private <T extends AutoCloseable> T own(T c) {
        owned.add(c);
        return c;
    }

    private DeviceBuffer f32(long n) {
        return own(be.allocate(DeviceBuffer.Type.F32, n));
    }

    private DeviceBuffer zeros(long n) {
        DeviceBuffer b = f32(n);
        be.fill(b, 0, n, 0.0);
        return b;
    }

    private DeviceBuffer i32(long n) {
        return own(be.allocate(DeviceBuffer.Type.I32, n));
    }

    private void upload() {
        Parameters p = model.hostParameters();
        for (Map.Entry<String, DeviceBuffer[]> e : tensors.entrySet()) {
            double[] d = p.value(e.getKey()).data();
            be.uploadDoubles(d, 0, e.getValue()[0], 0, d.length);
        }
        model.encoderLayer().syncToDevice();
        model.decoderLayer().syncToDevice();
        hostVersion = p.version();
    }

    void pullIfChanged() {
        if (!dirty) return;
        Parameters p = model.hostParameters();
        for (Map.Entry<String, DeviceBuffer[]> e : tensors.entrySet()) {
            double[] d = p.value(e.getKey()).data();
            be.downloadDoubles(e.getValue()[0], 0, d, 0, d.length);
        }
        model.encoderLayer().pullFromDevice();
        model.decoderLayer().pullFromDevice();
        p.markChanged();
        model.encoderLayer().markDeviceCurrent();
        model.decoderLayer().markDeviceCurrent();
        model.markAttentionCurrent();
        hostVersion = p.version();
        dirty = false;
    }

    private DeviceBuffer p(String name) {
        return tensors.get(name)[0];
    }

    private DeviceBuffer g(String name) {
        return tensors.get(name)[1];
    }

    /**
     * One step: returns the mean loss (downloaded, the step's one wait).
     *
     * @param optimizer   the optimizer's configuration, clipping included
     * @param stepsBefore steps the trainer's optimizer has taken (Adam's bias corrections are of step {@code stepsBefore + 1})
     * @param lr          the base learning rate of this step (the host optimizer's, which a schedule may have set)
     */
    double step(Seq2SeqBatch batch, long seed, OptimizerConfig optimizer, long stepsBefore, double lr) {
        if (model.hostParameters().version() != hostVersion) upload();
        ensureTraining(optimizer);
        int t = batch.sourceSteps(), b = batch.batch(), u = batch.targetSteps();
        int e = cfg.embeddingSize(), vs = cfg.sourceVocab(), vt = cfg.targetVocab(), pad = cfg.padId();
        int he = cfg.encoder().outputWidth(), w = cfg.encoder().outSize(), de = cfg.encoder().directions();
        int hd = cfg.decoder().hiddenSize(), cs = cfg.combineSize(), ci = hd + he;
        int ns = t * b, nt = u * b;
        List<AutoCloseable> scratch = new ArrayList<>();
        try {
            // Up: the ids (the lengths and mask are made from them, see sourceLengthsAndMask); the decoder input
            // (BOS, then the targets shifted) is made here.
            DeviceBuffer src = keep(scratch, be.allocate(DeviceBuffer.Type.I32, ns));
            DeviceBuffer tgt = keep(scratch, be.allocate(DeviceBuffer.Type.I32, nt));
            DeviceBuffer decIn = keep(scratch, be.allocate(DeviceBuffer.Type.I32, nt));
            be.upload(batch.source(), 0, src, 0, ns);
            be.upload(batch.target(), 0, tgt, 0, nt);
            DeviceTensor[] lm = sourceLengthsAndMask(batch, src, scratch);
            DeviceTensor lengths = lm[0], mask = lm[1];
            be.fill(decIn, 0, b, cfg.bosId());
            if (u > 1) be.copy(tgt, 0, decIn, b, (long) (u - 1) * b);

            // Encoder.
            DeviceTensor xs = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e));
            TrainKernels.embeddingFwd(be, ns, e, vs, src, p("source_embedding.weight"), xs.buffer());
            DeviceRnnOutput enc = keep(scratch, model.encoderLayer().forwardTraining(new DeviceRnnInput(xs, null, null, lengths), seed));
            DeviceTensor encY = enc.y();

            // Bridge: h0 = tanh(W [h_fwd; h_bwd] + b), the directions side by side per row.
            DeviceTensor h0 = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, b, hd));
            DeviceTensor srcH = null;
            boolean linear = cfg.bridge() == Bridge.LINEAR_TANH;
            if (linear) {
                srcH = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, b, de * w));
                for (int dir = 0; dir < de; dir++) {
                    TrainKernels.copyStrided(be, b, w, enc.hN().buffer(), (int) enc.hN().offset() + dir * b * w, w,
                            srcH.buffer(), dir * w, de * w);
                }
                be.gemm(false, true, b, hd, de * w, 1f, srcH.buffer(), 0, de * w, p("bridge_h_l0.weight"), 0, de * w, 0f,
                        h0.buffer(), 0, hd);
                TrainKernels.biasActFwd(be, b, hd, TrainKernels.Act.TANH, h0.buffer(), p("bridge_h_l0.bias"), h0.buffer());
            } else {
                h0.fill(0);
            }

            // Decoder over all target steps, then attention, combine and output.
            DeviceTensor xt = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, e));
            TrainKernels.embeddingFwd(be, nt, e, vt, decIn, p("target_embedding.weight"), xt.buffer());
            DeviceRnnOutput dec = keep(scratch, model.decoderLayer().forwardTraining(new DeviceRnnInput(xt, h0, null, null), seed + 1));
            DeviceTensor y = dec.y();
            DeviceAttentionOutput att = keep(scratch, model.attentionModule().forward(y, encY, mask));
            DeviceTensor ctx = att.context();
            DeviceBuffer comb = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) nt * cs));
            DeviceBuffer wc = p("combine.weight");
            be.gemm(false, true, nt, cs, hd, 1f, y.buffer(), y.offset(), hd, wc, 0, ci, 0f, comb, 0, cs);
            be.gemm(false, true, nt, cs, he, 1f, ctx.buffer(), ctx.offset(), he, wc, hd, ci, 1f, comb, 0, cs);
            TrainKernels.biasActFwd(be, nt, cs, TrainKernels.Act.TANH, comb, p("combine.bias"), comb);
            DeviceBuffer logits = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) nt * vt));
            DeviceBuffer wo = p("output.weight");
            be.gemm(false, true, nt, vt, cs, 1f, comb, 0, cs, wo, 0, cs, 0f, logits, 0, vt);
            TrainKernels.biasActFwd(be, nt, vt, TrainKernels.Act.IDENTITY, logits, p("output.bias"), logits);
            DeviceBuffer loss = keep(scratch, be.allocate(DeviceBuffer.Type.F32, nt));
            TrainKernels.softmaxXentFwdBwd(be, nt, vt, pad, logits, tgt, loss, logits);
            TrainKernels.softmaxXentMean(be, nt, pad, tgt, loss, mean);

            // Output and combine backward.
            be.launch(Kernels.COL_SUM, new long[] {vt}, nt, vt, logits, g("output.bias"), 0f);
            be.gemm(true, false, vt, cs, nt, 1f, logits, 0, vt, comb, 0, cs, 0f, g("output.weight"), 0, cs);
            DeviceBuffer dpre = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) nt * cs));
            be.gemm(false, false, nt, cs, vt, 1f, logits, 0, vt, wo, 0, cs, 0f, dpre, 0, cs);
            TrainKernels.biasActBwd(be, nt, cs, TrainKernels.Act.TANH, comb, dpre, dpre);
            be.launch(Kernels.COL_SUM, new long[] {cs}, nt, cs, dpre, g("combine.bias"), 0f);
            be.gemm(true, false, cs, hd, nt, 1f, dpre, 0, cs, y.buffer(), y.offset(), hd, 0f, g("combine.weight"), 0, ci);
            be.gemm(true, false, cs, he, nt, 1f, dpre, 0, cs, ctx.buffer(), ctx.offset(), he, 0f, g("combine.weight"), hd, ci);
            DeviceTensor dctx = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, he));
            be.gemm(false, false, nt, he, cs, 1f, dpre, 0, cs, wc, hd, ci, 0f, dctx.buffer(), 0, he);

            // Attention backward; the decoder's output gradient is its ddec plus the combine layer's part.
            DeviceAttentionGradients ag = keep(scratch, model.attentionModule().backward(y, encY, mask, dctx, null, GradMode.SET));
            DeviceTensor dy = ag.ddec();
            be.gemm(false, false, nt, hd, cs, 1f, dpre, 0, cs, wc, 0, ci, 1f, dy.buffer(), dy.offset(), hd);
            DeviceTensor dxt = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, e));
            DeviceTensor dh0 = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, b, hd));
            keep(scratch, model.decoderLayer().rnn().backward(dec, dy, null, null, decG, GradMode.SET,
                    DeviceRnnGradients.into(dxt, dh0, null)));
            DeviceBuffer startT = keep(scratch, be.allocate(DeviceBuffer.Type.I32, vt + 1));
            DeviceBuffer orderT = keep(scratch, be.allocate(DeviceBuffer.Type.I32, nt));
            TrainKernels.embeddingBwd(be, nt, e, vt, pad, decIn, dxt.buffer(), startT, orderT, g("target_embedding.weight"), 0f);

            // Bridge backward into the encoder's final-state gradient [D, B, w].
            DeviceTensor dhN = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, de, b, w));
            if (linear) {
                DeviceBuffer dpb = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * hd));
                TrainKernels.biasActBwd(be, b, hd, TrainKernels.Act.TANH, h0.buffer(), dh0.buffer(), dpb);
                be.launch(Kernels.COL_SUM, new long[] {hd}, b, hd, dpb, g("bridge_h_l0.bias"), 0f);
                be.gemm(true, false, hd, de * w, b, 1f, dpb, 0, hd, srcH.buffer(), 0, de * w, 0f, g("bridge_h_l0.weight"), 0, de * w);
                DeviceBuffer dsrc = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * de * w));
                be.gemm(false, false, b, de * w, hd, 1f, dpb, 0, hd, p("bridge_h_l0.weight"), 0, de * w, 0f, dsrc, 0, de * w);
                for (int dir = 0; dir < de; dir++) {
                    TrainKernels.copyStrided(be, b, w, dsrc, dir * w, de * w, dhN.buffer(), dir * b * w, w);
                }
            } else {
                dhN.fill(0);
            }
            DeviceTensor dxs = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e));
            keep(scratch, model.encoderLayer().rnn().backward(enc, ag.denc(), dhN, null, encG, GradMode.SET,
                    DeviceRnnGradients.into(dxs, null, null)));
            DeviceBuffer startS = keep(scratch, be.allocate(DeviceBuffer.Type.I32, vs + 1));
            DeviceBuffer orderS = keep(scratch, be.allocate(DeviceBuffer.Type.I32, ns));
            TrainKernels.embeddingBwd(be, ns, e, vs, pad, src, dxs.buffer(), startS, orderS, g("source_embedding.weight"), 0f);

            // Clipping over the non-frozen gradients and the update, on the device (the scale never leaves it).
            this.optimizer.setLearningRate(lr);
            this.optimizer.setSteps(stepsBefore);
            this.optimizer.step();
            model.encoderLayer().rnn().weightsUpdated();
            model.decoderLayer().rnn().weightsUpdated();
            dirty = true;
            float[] got = new float[1];
            be.download(mean, 0, got, 0, 1);
            return got[0];
        } finally {
            Resources.closeAll(scratch);
        }
    }

    /**
     * The encoder lengths {@code [B]} and attention mask {@code [B,T]} of {@code batch} on the device, whose source
     * ids are already in {@code src}: made there by {@code source_mask} when the batch's lengths are those its padded
     * ids tell (each source's last id is not the padding id and only padding follows it), else uploaded.
     */
    private DeviceTensor[] sourceLengthsAndMask(Seq2SeqBatch batch, DeviceBuffer src, List<AutoCloseable> scratch) {
        int t = batch.sourceSteps(), b = batch.batch(), pad = cfg.padId();
        int[] len = batch.sourceLengths(), ids = batch.source();
        boolean told = true;
        for (int i = 0; i < b && told; i++) {
            told = ids[(len[i] - 1) * b + i] != pad;
            for (int s = len[i]; s < t && told; s++) told = ids[s * b + i] == pad;
        }
        if (told) {
            DeviceTensor lengths = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.I32, b));
            DeviceTensor mask = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.I32, b, t));
            TrainKernels.sourceMask(be, t, b, pad, src, lengths.buffer(), mask.buffer());
            return new DeviceTensor[] {lengths, mask};
        }
        int[] maskHost = new int[b * t];
        for (int i = 0; i < b; i++) for (int s = 0; s < len[i]; s++) maskHost[i * t + s] = 1;
        return new DeviceTensor[] {keep(scratch, DeviceTensor.ofInts(be, len, b)), keep(scratch, DeviceTensor.ofInts(be, maskHost, b, t))};
    }

    /**
     * The decoder of this model bound to the sources of {@code batch}, on the device, for {@link DeviceDecoding}: the
     * source ids go up (with the lengths and mask only for a source ending in the padding id, see
     * {@link #sourceLengthsAndMask}); the encoder outputs, the bridge's start state and every later state stay there.
     * Each step embeds the tokens, runs the decoder, Luong attention, the combine and output layers.
     */
    Decoder decoder(Seq2SeqBatch batch) {
        if (model.hostParameters().version() != hostVersion) upload();
        return new Decoder(batch);
    }

    final class Decoder implements DeviceStepModel {
        private final List<AutoCloseable> inputs = new ArrayList<>();
        private final List<AutoCloseable> rowsScratch = new ArrayList<>();
        private final int b, t;
        private final DeviceTensor encY, mask, h0;
        private DeviceTensor tiledEnc, tiledMask, h, attention;
        /** The last step's attention output, which {@link #attention} views; freed by the next step. */
        private DeviceAttentionOutput lastAtt;
        private DeviceTensor xt, logits;
        private DeviceBuffer comb;
        private int rows;

        private Decoder(Seq2SeqBatch batch) {
            t = batch.sourceSteps();
            b = batch.batch();
            int e = cfg.embeddingSize(), vs = cfg.sourceVocab(), hd = cfg.decoder().hiddenSize();
            int w = cfg.encoder().outSize(), de = cfg.encoder().directions();
            try {
                DeviceBuffer src = keep(inputs, be.allocate(DeviceBuffer.Type.I32, (long) t * b));
                be.upload(batch.source(), 0, src, 0, t * b);
                DeviceTensor[] lm = sourceLengthsAndMask(batch, src, inputs);
                mask = lm[1];
                DeviceTensor xs = keep(inputs, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e));
                TrainKernels.embeddingFwd(be, t * b, e, vs, src, p("source_embedding.weight"), xs.buffer());
                DeviceRnnOutput enc = keep(inputs, model.encoderLayer().forward(new DeviceRnnInput(xs, null, null, lm[0])));
                encY = enc.y();
                h0 = keep(inputs, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, b, hd));
                if (cfg.bridge() == Bridge.LINEAR_TANH) {
                    DeviceBuffer srcH = keep(inputs, be.allocate(DeviceBuffer.Type.F32, (long) b * de * w));
                    for (int dir = 0; dir < de; dir++) {
                        TrainKernels.copyStrided(be, b, w, enc.hN().buffer(), (int) enc.hN().offset() + dir * b * w, w, srcH, dir * w, de * w);
                    }
                    be.gemm(false, true, b, hd, de * w, 1f, srcH, 0, de * w, p("bridge_h_l0.weight"), 0, de * w, 0f, h0.buffer(), 0, hd);
                    TrainKernels.biasActFwd(be, b, hd, TrainKernels.Act.TANH, h0.buffer(), p("bridge_h_l0.bias"), h0.buffer());
                } else {
                    h0.fill(0);
                }
            } catch (RuntimeException | Error ex) {
                close();
                throw ex;
            }
        }

        @Override
        public DeviceBackend backend() {
            return be;
        }

        @Override
        public int batchSize() {
            return b;
        }

        @Override
        public int vocabSize() {
            return cfg.targetVocab();
        }

        @Override
        public int rows() {
            return rows;
        }

        @Override
        public void start(int k) {
            if (k <= 0) throw new IllegalArgumentException("rowsPerItem: expected > 0, got " + k);
            closeAttention();
            Resources.closeAll(rowsScratch);
            rowsScratch.clear();
            rows = b * k;
            int e = cfg.embeddingSize(), hd = cfg.decoder().hiddenSize(), he = cfg.encoder().outputWidth();
            h = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, hd));
            if (k == 1) {
                tiledEnc = encY;
                tiledMask = mask;
                h.copyFrom(h0);
            } else {
                // Row b·k + j is a copy of item b: one strided copy per j for the [T·B, He] encoder rows and the
                // [B, hd] state; the I32 mask in one repeat_rows_i32 (a float copy kernel must not carry int bits).
                tiledEnc = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, rows, he));
                tiledMask = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.I32, rows, t));
                for (int j = 0; j < k; j++) {
                    TrainKernels.copyStrided(be, t * b, he, encY.buffer(), (int) encY.offset(), he, tiledEnc.buffer(), j * he, k * he);
                    TrainKernels.copyStrided(be, b, hd, h0.buffer(), (int) h0.offset(), hd, h.buffer(), j * hd, k * hd);
                }
                if (mask.offset() != 0) throw new IllegalStateException("decoder: a source mask at offset " + mask.offset());
                TrainKernels.repeatRowsI32(be, b, t, k, mask.buffer(), tiledMask.buffer());
            }
            xt = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, e));
            comb = keep(rowsScratch, be.allocate(DeviceBuffer.Type.F32, (long) rows * cfg.combineSize()));
            logits = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, rows, cfg.targetVocab()));
        }

        @Override
        public DeviceTensor step(DeviceBuffer tok) {
            if (h == null) throw new IllegalStateException("decoder: start(rowsPerItem) before step");
            int n = rows, e = cfg.embeddingSize(), vt = cfg.targetVocab(), hd = cfg.decoder().hiddenSize();
            int he = cfg.encoder().outputWidth(), cs = cfg.combineSize(), ci = hd + he;
            DeviceBuffer wc = p("combine.weight"), wo = p("output.weight");
            TrainKernels.embeddingFwd(be, n, e, vt, tok, p("target_embedding.weight"), xt.buffer());
            try (DeviceRnnOutput out = model.decoderLayer().forward(new DeviceRnnInput(xt, h, null, null))) {
                DeviceAttentionOutput att = model.attentionModule().forward(out.y(), tiledEnc, tiledMask);
                DeviceTensor y = out.y(), ctx = att.context();
                be.gemm(false, true, n, cs, hd, 1f, y.buffer(), y.offset(), hd, wc, 0, ci, 0f, comb, 0, cs);
                be.gemm(false, true, n, cs, he, 1f, ctx.buffer(), ctx.offset(), he, wc, hd, ci, 1f, comb, 0, cs);
                TrainKernels.biasActFwd(be, n, cs, TrainKernels.Act.TANH, comb, p("combine.bias"), comb);
                be.gemm(false, true, n, vt, cs, 1f, comb, 0, cs, wo, 0, cs, 0f, logits.buffer(), 0, vt);
                TrainKernels.biasActFwd(be, n, vt, TrainKernels.Act.IDENTITY, logits.buffer(), p("output.bias"), logits.buffer());
                be.copy(out.hN().buffer(), out.hN().offset(), h.buffer(), 0, (long) n * hd);
                closeAttention();
                lastAtt = att;
                attention = att.weights().reshape(n, t);
            }
            return logits;
        }

        @Override
        public DeviceTensor attention() {
            return attention;
        }

        @Override
        public void select(DeviceBuffer parents) {
            if (h == null) throw new IllegalStateException("decoder: start(rowsPerItem) before select");
            int hd = cfg.decoder().hiddenSize();
            // embedding_fwd is a row gather: out[r,:] = table[parents[r],:] with the state as the table.
            try (DeviceTensor next = DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, hd)) {
                TrainKernels.embeddingFwd(be, rows, hd, rows, parents, h.buffer(), next.buffer());
                h.copyFrom(next);
            }
        }

        private void closeAttention() {
            if (lastAtt != null) lastAtt.close();
            lastAtt = null;
            attention = null;
        }

        @Override
        public void close() {
            closeAttention();
            Resources.closeAll(rowsScratch);
            rowsScratch.clear();
            Resources.closeAll(inputs);
            inputs.clear();
        }
    }

    private static <T extends AutoCloseable> T keep(List<AutoCloseable> list, T c) {
        list.add(c);
        return c;
    }

    @Override
    public void close() {
        try {
            if (optimizer != null) optimizer.close();
        } finally {
            optimizer = null;
            Resources.closeAll(owned);
        }
    }
}
