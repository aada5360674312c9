package dev.recur.nn.seq2seq;

import dev.recur.nn.Resources;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Kernels;
import dev.recur.backend.TrainKernels;
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
import dev.recur.nn.train.DeviceOptimizer;
import dev.recur.nn.train.OptimizerConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link Seq2SeqTrainer} step with teacher forcing or scheduled sampling on the device, for the models whose every part has a device
 * kernel here ({@link #supports}): any encoder and decoder network the device {@code Rnn} runs (the decoder's LSTM
 * cell state included), the linear-tanh, sum or zero bridge per decoder layer (with the cell-state bridge between two
 * LSTMs), no attention, Luong attention, or Bahdanau attention (a loop of attention and one decoder call per target
 * step, each call's trace kept for the backward through time), with any score. Scheduled sampling (teacher forcing
 * below 1) runs every style through that per-step loop, the combine and output layers inside it: each step's input is
 * chosen from the previous step's logits by {@code argmax_rows} and {@code scheduled_feed} (the host path's coins, see
 * {@link Seq2Seq}), and the chosen ids are what {@code embedding_bwd} scatters the input gradients by. Embeddings ({@code embedding_fwd}/{@code _bwd}), the
 * encoder and decoder on device tensors, the bridge, combine and output layers as GEMMs plus {@code bias_act} (the
 * combine layer's [y; context] input never concatenated: two GEMMs over the two column blocks of its weight),
 * {@code softmax_xent_fwd_bwd}, gradients by {@code col_sum} and GEMMs, then a {@link DeviceOptimizer} step (clipping,
 * one update launch per parameter buffer and group); the general and additive attention parameters are the attention's own
 * device buffers ({@link dev.recur.nn.attention.Attention#deviceWeights()}), stepped in place. The host uploads
 * source and target ids ({@code source_mask} makes the source lengths and attention mask from the ids; they are
 * uploaded only for a batch whose lengths the padded ids cannot tell) and downloads the 4-byte mean loss.
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
    private static final String ATT = "attention.";
    /** Gradient views of the attention parameters for its device backward (empty for dot and scaled). */
    private final Map<String, DeviceTensor> attGrads = new LinkedHashMap<>();

    /**
     * Whether {@code model} on its backend can train here; otherwise the trainer steps on the host. Every encoder and
     * decoder network the device {@code Rnn} runs (any cell, layers, directions, projection), each bridge, each
     * attention style and score: every configuration, on a device backend.
     */
    static boolean supports(Seq2Seq model) {
        return model.encoderLayer().rnn().backend() instanceof DeviceBackend;
    }

    Seq2SeqDeviceStep(Seq2Seq model) {
        this.model = model;
        this.cfg = model.config();
        this.be = (DeviceBackend) model.encoderLayer().rnn().backend();
        try {
            // The attention's parameters are its own device buffers, which Adam updates in place and its device
            // engine reads: nothing is uploaded after a step. Every other one is a buffer of this step's.
            Map<String, DeviceTensor> attW = model.attentionModule() == null ? Map.of() : model.attentionModule().deviceWeights();
            for (String n : hostTensorNames()) {
                DeviceTensor a = n.startsWith(ATT) ? attW.get(n.substring(ATT.length())) : null;
                if (a != null && a.offset() != 0) throw new IllegalStateException("seq2seq device step: attention parameter " + n + " at offset " + a.offset());
                tensors.put(n, new DeviceBuffer[] {a != null ? a.buffer() : f32(model.hostParameters().value(n).size()), null});
            }
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
            if (model.attentionModule() != null) {
                for (Map.Entry<String, int[]> e : model.attentionModule().config().weightShapes().entrySet()) {
                    attGrads.put(e.getKey(), DeviceTensor.over(be, g(ATT + e.getKey()), e.getValue()));
                }
            }
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

    /** The parameters outside the two recurrent networks (those of the attention included: dot and scaled have none). */
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
     * @param seed           the step's dropout seed (the decoder's is {@code seed + 1}) and, through
     *                       {@link Seq2Seq#samplingSeed}, its scheduled-sampling coins'
     * @param teacherForcing the probability in [0, 1] of feeding the true previous token; below 1 the decoder runs
     *                       step by step and {@code scheduled_feed} chooses each input between the true token and the
     *                       previous step's argmax ({@code argmax_rows}), as the host path does
     * @param optimizer   the optimizer's configuration, clipping included
     * @param stepsBefore steps the trainer's optimizer has taken (Adam's bias corrections are of step {@code stepsBefore + 1})
     * @param lr          the base learning rate of this step (the host optimizer's, which a schedule may have set)
     */
    double step(Seq2SeqBatch batch, long seed, double teacherForcing, OptimizerConfig optimizer, long stepsBefore, double lr) {
        if (!(teacherForcing >= 0 && teacherForcing <= 1)) {
            throw new IllegalArgumentException("teacherForcing: expected a probability in [0, 1], got " + teacherForcing);
        }
        if (model.hostParameters().version() != hostVersion) upload();
        ensureTraining(optimizer);
        int t = batch.sourceSteps(), b = batch.batch(), u = batch.targetSteps();
        int e = cfg.embeddingSize(), vs = cfg.sourceVocab(), vt = cfg.targetVocab(), pad = cfg.padId();
        boolean attn = cfg.style() != AttentionStyle.NONE, bahdanau = cfg.style() == AttentionStyle.BAHDANAU;
        int he = attn ? cfg.encoder().outputWidth() : 0, hd = cfg.decoder().hiddenSize(), cs = cfg.combineSize(), ci = hd + he;
        int ld = cfg.decoder().numLayers(), ns = t * b, nt = u * b;
        // Scheduled sampling: each step's input depends on the previous step's logits, so the decoder, attention and
        // output layers run step by step (the Bahdanau loop), and decIn is filled as the loop chooses.
        boolean sampled = teacherForcing < 1, stepwise = bahdanau || sampled;
        List<AutoCloseable> scratch = new ArrayList<>();
        try {
            // Up: the ids (the lengths and mask are made from them, see sourceLengthsAndMask); the decoder input
            // (BOS, then the targets shifted, or under scheduled sampling the tokens the loop chooses) is made here.
            DeviceBuffer src = keep(scratch, be.allocate(DeviceBuffer.Type.I32, ns));
            DeviceBuffer tgt = keep(scratch, be.allocate(DeviceBuffer.Type.I32, nt));
            DeviceBuffer decIn = keep(scratch, be.allocate(DeviceBuffer.Type.I32, nt));
            be.upload(batch.source(), 0, src, 0, ns);
            be.upload(batch.target(), 0, tgt, 0, nt);
            DeviceTensor[] lm = sourceLengthsAndMask(batch, src, scratch);
            DeviceTensor lengths = lm[0], mask = lm[1];
            be.fill(decIn, 0, b, cfg.bosId());
            if (u > 1 && !sampled) be.copy(tgt, 0, decIn, b, (long) (u - 1) * b);

            // Encoder.
            DeviceTensor xs = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e));
            TrainKernels.embeddingFwd(be, ns, e, vs, src, p("source_embedding.weight"), xs.buffer());
            DeviceRnnOutput enc = keep(scratch, model.encoderLayer().forwardTraining(new DeviceRnnInput(xs, null, null, lengths), seed));
            DeviceTensor encY = enc.y();

            // Bridge: the decoder's initial states [Ld, B, hd] (and the LSTM cell state), see bridgeForward.
            BridgeOut br = bridgeForward(enc, b, scratch);

            // Decoder over all target steps, then attention (Bahdanau: a loop of attention and one decoder step),
            // combine and output.
            DeviceTensor xt = null;
            if (!sampled) {
                xt = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, e));
                TrainKernels.embeddingFwd(be, nt, e, vt, decIn, p("target_embedding.weight"), xt.buffer());
            }
            DeviceBuffer comb = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) nt * cs));
            DeviceBuffer logits = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) nt * vt));
            DeviceRnnOutput dec = null;
            StepwiseOut bd = null;
            DeviceTensor y, ctx;
            if (stepwise) {
                Feed feed = sampled ? new Feed(teacherForcing, Seq2Seq.samplingSeed(seed), tgt, decIn, comb, logits) : null;
                bd = stepwiseForward(xt, br, encY, mask, u, b, seed + 1, feed, scratch);
                y = bd.y();
                ctx = bd.ctx();
            } else {
                dec = keep(scratch, model.decoderLayer().forwardTraining(new DeviceRnnInput(xt, br.h0(), br.c0(), null), seed + 1));
                y = dec.y();
                DeviceAttentionOutput att = attn ? keep(scratch, model.attentionModule().forward(y, encY, mask)) : null;
                ctx = att == null ? null : att.context();
            }
            // Under scheduled sampling the loop already ran the combine and output layers, step by step.
            DeviceBuffer wc = p("combine.weight"), wo = p("output.weight");
            if (!sampled) head(y.buffer(), y.offset(), ctx, nt, comb, logits);
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
            if (attn) be.gemm(true, false, cs, he, nt, 1f, dpre, 0, cs, ctx.buffer(), ctx.offset(), he, 0f, g("combine.weight"), hd, ci);

            // Attention backward (its parameters' gradients into attGrads); the decoder's output gradient is its
            // ddec plus the combine layer's part.
            DeviceTensor dy, dEncY = null, dctx = null;
            if (attn) {
                dctx = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, he));
                be.gemm(false, false, nt, he, cs, 1f, dpre, 0, cs, wc, hd, ci, 0f, dctx.buffer(), 0, he);
            }
            if (attn && !bahdanau) {
                DeviceAttentionGradients ag = keep(scratch, model.attentionModule().backward(y, encY, mask, dctx,
                        attGrads.isEmpty() ? null : attGrads, GradMode.SET));
                dy = ag.ddec();
                dEncY = ag.denc();
                be.gemm(false, false, nt, hd, cs, 1f, dpre, 0, cs, wc, 0, ci, 1f, dy.buffer(), dy.offset(), hd);
            } else {
                dy = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, hd));
                be.gemm(false, false, nt, hd, cs, 1f, dpre, 0, cs, wc, 0, ci, 0f, dy.buffer(), dy.offset(), hd);
            }
            DeviceTensor dxt = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, e));
            DeviceTensor dh0 = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, b, hd));
            DeviceTensor dc0 = br.c0() == null ? null : keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, b, hd));
            if (stepwise) {
                DeviceTensor dEncB = stepwiseBackward(bd, dy, dctx, encY, mask, dxt, dh0, dc0, t, u, b, scratch);
                if (bahdanau) dEncY = dEncB;
            } else {
                keep(scratch, model.decoderLayer().rnn().backward(dec, dy, null, null, decG, GradMode.SET,
                        DeviceRnnGradients.into(dxt, dh0, dc0)));
            }
            DeviceBuffer startT = keep(scratch, be.allocate(DeviceBuffer.Type.I32, vt + 1));
            DeviceBuffer orderT = keep(scratch, be.allocate(DeviceBuffer.Type.I32, nt));
            TrainKernels.embeddingBwd(be, nt, e, vt, pad, decIn, dxt.buffer(), startT, orderT, g("target_embedding.weight"), 0f);

            // Bridge backward into the encoder's final-state gradients [Le*D, B, w] (and its cell state's).
            DeviceTensor[] dN = bridgeBackward(br, dh0, dc0, b, scratch);
            DeviceTensor dxs = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e));
            keep(scratch, model.encoderLayer().rnn().backward(enc, dEncY, dN[0], dN[1], encG, GradMode.SET,
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
            if (model.attentionModule() != null) model.attentionModule().weightsUpdated();
            dirty = true;
            float[] got = new float[1];
            be.download(mean, 0, got, 0, 1);
            return got[0];
        } finally {
            Resources.closeAll(scratch);
        }
    }

    /**
     * The combine and output layers over {@code n} rows: {@code comb = tanh(W_c [y; ctx] + b_c)} (the concatenation
     * never made: two GEMMs over the two column blocks of W_c; no ctx without attention), {@code logits = W_o comb + b_o}.
     */
    private void head(DeviceBuffer y, long yOff, DeviceTensor ctx, int n, DeviceBuffer comb, DeviceBuffer logits) {
        int hd = cfg.decoder().hiddenSize(), he = ctx == null ? 0 : cfg.encoder().outputWidth(), cs = cfg.combineSize();
        int ci = hd + (cfg.style() != AttentionStyle.NONE ? cfg.encoder().outputWidth() : 0), vt = cfg.targetVocab();
        DeviceBuffer wc = p("combine.weight");
        be.gemm(false, true, n, cs, hd, 1f, y, yOff, hd, wc, 0, ci, 0f, comb, 0, cs);
        if (ctx != null) be.gemm(false, true, n, cs, he, 1f, ctx.buffer(), ctx.offset(), he, wc, hd, ci, 1f, comb, 0, cs);
        TrainKernels.biasActFwd(be, n, cs, TrainKernels.Act.TANH, comb, p("combine.bias"), comb);
        be.gemm(false, true, n, vt, cs, 1f, comb, 0, cs, p("output.weight"), 0, cs, 0f, logits, 0, vt);
        TrainKernels.biasActFwd(be, n, vt, TrainKernels.Act.IDENTITY, logits, p("output.bias"), logits);
    }

    // ---------------------------------------------------------------------------------------------
    // The per-step decoder (as Seq2Seq's per-step segments), for Bahdanau attention and for scheduled sampling: one
    // decoder call per step, each kept with its trace for the backward through time. Bahdanau: c_s = attend(top layer
    // of h_{s-1}), h_s = RNN(h_{s-1}, [x_s; c_s]); Luong: c_s = attend(h_s) after the call.

    /**
     * Scheduled sampling's inputs: the probability and coin seed, the targets {@code [U, B]}, the decoder input ids
     * {@code [U, B]} the loop fills (step 0 already BOS), and the combine outputs and logits {@code [U, B, cs|V]} the
     * loop computes step by step (the next input needs the step's argmax).
     */
    private record Feed(double teacherForcing, long coinSeed, DeviceBuffer tgt, DeviceBuffer decIn, DeviceBuffer comb,
                        DeviceBuffer logits) {}

    /** The per-step decoder calls and (Bahdanau) queries, and the outputs and contexts of all steps {@code [U, B, hd|He]}. */
    private record StepwiseOut(DeviceTensor y, DeviceTensor ctx, DeviceRnnOutput[] outs, DeviceTensor[] queries) {}

    /**
     * The decoder step by step over {@code xt} {@code [U, B, E]} (the embedded inputs), or with {@code feed}, over the
     * inputs it chooses: step s > 0 takes, per row, the true token of step s-1 or the argmax of step s-1's logits by
     * {@code scheduled_feed}'s coin (Seq2Seq.run's rule), embedded here; every launch stays on the device.
     */
    private StepwiseOut stepwiseForward(DeviceTensor xt, BridgeOut br, DeviceTensor encY, DeviceTensor mask, int u, int b,
                                        long seed, Feed feed, List<AutoCloseable> scratch) {
        boolean bahdanau = cfg.style() == AttentionStyle.BAHDANAU, attn = cfg.style() != AttentionStyle.NONE;
        int e = cfg.embeddingSize(), he = attn ? cfg.encoder().outputWidth() : 0, hd = cfg.decoder().hiddenSize();
        int ld = cfg.decoder().numLayers(), cs = cfg.combineSize(), vt = cfg.targetVocab();
        DeviceTensor y = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, hd));
        DeviceTensor ctx = attn ? keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, u, b, he)) : null;
        DeviceRnnOutput[] outs = new DeviceRnnOutput[u];
        DeviceTensor[] queries = new DeviceTensor[u];
        DeviceBuffer ids = null, pred = null, combS = null, logitsS = null, fed = null;
        if (feed != null) {
            ids = keep(scratch, be.allocate(DeviceBuffer.Type.I32, b));
            fed = bahdanau ? keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * e)) : null;
            pred = keep(scratch, be.allocate(DeviceBuffer.Type.I32, b));
            combS = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * cs));
            logitsS = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * vt));
        }
        DeviceTensor h = br.h0(), c = br.c0();
        for (int s = 0; s < u; s++) {
            // Each step's input is its own tensor: the call's trace may keep it for the backward.
            DeviceTensor x = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, b, bahdanau ? e + he : e));
            DeviceBuffer emb = xt == null ? null : xt.buffer();
            long embOff = (long) s * b * e;
            if (feed != null) {
                if (s > 0) {
                    // logitsS still holds step s-1's.
                    TrainKernels.argmaxRows(be, b, vt, logitsS, pred);
                    TrainKernels.scheduledFeed(be, b, feed.teacherForcing(), feed.coinSeed(), s, feed.tgt(), (s - 1) * b, pred, ids, 0);
                    be.copy(ids, 0, feed.decIn(), (long) s * b, b);
                } else {
                    be.copy(feed.decIn(), 0, ids, 0, b);
                }
                // Without Bahdanau's context the embedding is the whole input: embedded in place.
                emb = bahdanau ? fed : x.buffer();
                embOff = 0;
                TrainKernels.embeddingFwd(be, b, e, vt, ids, p("target_embedding.weight"), emb);
            }
            DeviceAttentionOutput att = null;
            if (bahdanau) {
                queries[s] = h.view((long) (ld - 1) * b * hd, 1, b, hd);
                att = keep(scratch, model.attentionModule().forward(queries[s], encY, mask));
                inputWithContext(emb, embOff, att.context(), x, b);
            } else if (feed == null) {
                be.copy(emb, embOff, x.buffer(), x.offset(), (long) b * e);
            }
            // Every step's call uses the same seed, as on the host: one variational dropout mask per sequence.
            outs[s] = keep(scratch, model.decoderLayer().forwardTraining(new DeviceRnnInput(x, h, c, null), seed));
            if (attn && !bahdanau) att = keep(scratch, model.attentionModule().forward(outs[s].y(), encY, mask));
            be.copy(outs[s].y().buffer(), outs[s].y().offset(), y.buffer(), (long) s * b * hd, (long) b * hd);
            if (attn) be.copy(att.context().buffer(), att.context().offset(), ctx.buffer(), (long) s * b * he, (long) b * he);
            if (feed != null) {
                head(outs[s].y().buffer(), outs[s].y().offset(), att == null ? null : att.context(), b, combS, logitsS);
                be.copy(combS, 0, feed.comb(), (long) s * b * cs, (long) b * cs);
                be.copy(logitsS, 0, feed.logits(), (long) s * b * vt, (long) b * vt);
            }
            h = outs[s].hN();
            c = outs[s].cN();
        }
        return new StepwiseOut(y, ctx, outs, queries);
    }

    /** {@code x [1, B, E + He]} = each row's embedding (from {@code emb[embOff..]}, {@code [B, E]}) then its context. */
    private void inputWithContext(DeviceBuffer emb, long embOff, DeviceTensor context, DeviceTensor x, int b) {
        int e = cfg.embeddingSize(), he = cfg.encoder().outputWidth();
        TrainKernels.copyStrided(be, b, e, emb, (int) embOff, e, x.buffer(), (int) x.offset(), e + he);
        TrainKernels.copyStrided(be, b, he, context.buffer(), (int) context.offset(), he, x.buffer(), (int) x.offset() + e, e + he);
    }

    /**
     * The backward through time of {@link #stepwiseForward} for the gradients {@code dy}, {@code dctx} {@code [U, B,
     * hd|He]} of the combine layer's inputs (with Luong attention, dy already holds the attention's part): sets the
     * decoder's (and Bahdanau's attention's) parameter gradients (the last step SET, the others ADD), the decoder
     * input embeddings' gradient into {@code dxt}, the initial states' into {@code dh0}/{@code dc0}; returns the
     * gradient of the encoder outputs for Bahdanau attention, else null (Luong's came from its attention backward).
     */
    private DeviceTensor stepwiseBackward(StepwiseOut bd, DeviceTensor dy, DeviceTensor dctx, DeviceTensor encY, DeviceTensor mask,
                                          DeviceTensor dxt, DeviceTensor dh0, DeviceTensor dc0, int t, int u, int b,
                                          List<AutoCloseable> scratch) {
        boolean bahdanau = cfg.style() == AttentionStyle.BAHDANAU;
        int e = cfg.embeddingSize(), he = bahdanau ? cfg.encoder().outputWidth() : 0, hd = cfg.decoder().hiddenSize(), ld = cfg.decoder().numLayers();
        DeviceTensor dEnc = bahdanau ? keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, he)) : null;
        DeviceTensor dh = null, dc = null;
        for (int s = u - 1; s >= 0; s--) {
            GradMode mode = s == u - 1 ? GradMode.SET : GradMode.ADD;
            DeviceTensor dx = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, b, e + he));
            DeviceTensor dhs = s == 0 ? dh0 : keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, b, hd));
            DeviceTensor dcs = dc0 == null ? null : s == 0 ? dc0 : keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, b, hd));
            keep(scratch, model.decoderLayer().rnn().backward(bd.outs()[s], dy.view((long) s * b * hd, 1, b, hd), dh, dc, decG, mode,
                    DeviceRnnGradients.into(dx, dhs, dcs)));
            if (!bahdanau) {
                be.copy(dx.buffer(), dx.offset(), dxt.buffer(), dxt.offset() + (long) s * b * e, (long) b * e);
                dh = dhs;
                dc = dcs;
                continue;
            }
            // dx = [d embedding; d context]: the first part is step s of dxt, the second adds to the combine layer's.
            TrainKernels.copyStrided(be, b, e, dx.buffer(), (int) dx.offset(), e + he, dxt.buffer(), (int) dxt.offset() + s * b * e, e);
            DeviceTensor dcs2 = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, b, he));
            TrainKernels.copyStrided(be, b, he, dx.buffer(), (int) dx.offset() + e, e + he, dcs2.buffer(), 0, he);
            add(dctx.buffer(), dctx.offset() + (long) s * b * he, dcs2.buffer(), 0, b * he, true);
            DeviceAttentionGradients ag = keep(scratch, model.attentionModule().backward(bd.queries()[s], encY, mask, dcs2,
                    attGrads.isEmpty() ? null : attGrads, mode));
            add(ag.denc().buffer(), ag.denc().offset(), dEnc.buffer(), dEnc.offset(), t * b * he, s < u - 1);
            // The query was the top layer of the state the step started from.
            add(ag.ddec().buffer(), ag.ddec().offset(), dhs.buffer(), dhs.offset() + (long) (ld - 1) * b * hd, b * hd, true);
            dh = dhs;
            dc = dcs;
        }
        return dEnc;
    }

    // ---------------------------------------------------------------------------------------------
    // Bridge (as Seq2Seq.bridgeForward/bridgeBackward): decoder layer l takes encoder layer
    // max(0, l + Le - Ld); state tensors are [layers * directions, B, width], direction fastest.

    /** The decoder's initial states and, for the linear-tanh bridge, each layer's input and tanh output. */
    private record BridgeOut(DeviceTensor h0, DeviceTensor c0, DeviceBuffer[] srcH, DeviceBuffer[] srcC,
                             DeviceBuffer[] outH, DeviceBuffer[] outC) {}

    private int encoderLayerFor(int l) {
        return Math.max(0, l + cfg.encoder().numLayers() - cfg.decoder().numLayers());
    }

    private boolean lstmToLstm() {
        return cfg.encoder().cell() == CellType.LSTM && cfg.decoder().cell() == CellType.LSTM;
    }

    /** h0 {@code [Ld, B, hd]} (and c0 for an LSTM decoder, zeros unless both are LSTMs) from the encoder's final states. */
    private BridgeOut bridgeForward(DeviceRnnOutput enc, int b, List<AutoCloseable> scratch) {
        int ld = cfg.decoder().numLayers(), hd = cfg.decoder().hiddenSize(), de = cfg.encoder().directions();
        int w = cfg.encoder().outSize(), hc = cfg.encoder().hiddenSize();
        boolean withC = lstmToLstm();
        DeviceTensor h0 = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, b, hd));
        DeviceTensor c0 = cfg.decoder().cell() == CellType.LSTM ? keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, b, hd)) : null;
        DeviceBuffer[] srcH = new DeviceBuffer[ld], srcC = new DeviceBuffer[ld], outH = new DeviceBuffer[ld], outC = new DeviceBuffer[ld];
        if (cfg.bridge() == Bridge.ZERO || !withC) {
            if (c0 != null) c0.fill(0);
        }
        if (cfg.bridge() == Bridge.ZERO) {
            h0.fill(0);
            return new BridgeOut(h0, c0, srcH, srcC, outH, outC);
        }
        for (int l = 0; l < ld; l++) {
            int el = encoderLayerFor(l);
            if (cfg.bridge() == Bridge.LINEAR_TANH) {
                srcH[l] = directions(enc.hN(), el, b, w, scratch);
                outH[l] = linearTanh(srcH[l], b, de * w, hd, "bridge_h_l" + l, scratch);
                be.copy(outH[l], 0, h0.buffer(), h0.offset() + (long) l * b * hd, (long) b * hd);
                if (withC) {
                    srcC[l] = directions(enc.cN(), el, b, hc, scratch);
                    outC[l] = linearTanh(srcC[l], b, de * hc, hd, "bridge_c_l" + l, scratch);
                    be.copy(outC[l], 0, c0.buffer(), c0.offset() + (long) l * b * hd, (long) b * hd);
                }
            } else {
                // SUM: the directions' final states added (Seq2SeqConfig checked the widths equal hd).
                for (int dir = 0; dir < de; dir++) {
                    long from = (long) (el * de + dir) * b * hd;
                    add(enc.hN().buffer(), enc.hN().offset() + from, h0.buffer(), h0.offset() + (long) l * b * hd, b * hd, dir > 0);
                    if (withC) add(enc.cN().buffer(), enc.cN().offset() + from, c0.buffer(), c0.offset() + (long) l * b * hd, b * hd, dir > 0);
                }
            }
        }
        return new BridgeOut(h0, c0, srcH, srcC, outH, outC);
    }

    /**
     * The gradients {dhN, dcN} of the encoder's final states from those of the decoder's initial states (dcN null
     * unless both networks are LSTMs); a decoder deeper than the encoder adds several layers' gradients into layer 0.
     */
    private DeviceTensor[] bridgeBackward(BridgeOut br, DeviceTensor dh0, DeviceTensor dc0, int b, List<AutoCloseable> scratch) {
        int ld = cfg.decoder().numLayers(), hd = cfg.decoder().hiddenSize(), de = cfg.encoder().directions();
        int le = cfg.encoder().numLayers(), w = cfg.encoder().outSize(), hc = cfg.encoder().hiddenSize();
        boolean withC = lstmToLstm() && cfg.bridge() != Bridge.ZERO;
        DeviceTensor dhN = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, le * de, b, w));
        DeviceTensor dcN = withC ? keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, le * de, b, hc)) : null;
        dhN.fill(0);
        if (dcN != null) dcN.fill(0);
        if (cfg.bridge() == Bridge.ZERO) return new DeviceTensor[] {dhN, null};
        for (int l = 0; l < ld; l++) {
            int el = encoderLayerFor(l);
            long at = (long) l * b * hd;
            if (cfg.bridge() == Bridge.LINEAR_TANH) {
                linearTanhBackward(br.srcH()[l], br.outH()[l], dh0, at, b, de * w, hd, "bridge_h_l" + l, dhN, el, w, scratch);
                if (withC) linearTanhBackward(br.srcC()[l], br.outC()[l], dc0, at, b, de * hc, hd, "bridge_c_l" + l, dcN, el, hc, scratch);
            } else {
                for (int dir = 0; dir < de; dir++) {
                    long to = (long) (el * de + dir) * b * hd;
                    add(dh0.buffer(), dh0.offset() + at, dhN.buffer(), dhN.offset() + to, b * hd, true);
                    if (withC) add(dc0.buffer(), dc0.offset() + at, dcN.buffer(), dcN.offset() + to, b * hd, true);
                }
            }
        }
        return new DeviceTensor[] {dhN, dcN};
    }

    /** {@code [B, D*width]}: encoder layer {@code el}'s directions of {@code state} side by side per row. */
    private DeviceBuffer directions(DeviceTensor state, int el, int b, int width, List<AutoCloseable> scratch) {
        int de = cfg.encoder().directions();
        DeviceBuffer out = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * de * width));
        for (int dir = 0; dir < de; dir++) {
            TrainKernels.copyStrided(be, b, width, state.buffer(), (int) state.offset() + (el * de + dir) * b * width, width,
                    out, dir * width, de * width);
        }
        return out;
    }

    /** {@code tanh(src W^T + bias)} {@code [B, hd]} of the named bridge layer. */
    private DeviceBuffer linearTanh(DeviceBuffer src, int b, int k, int hd, String name, List<AutoCloseable> scratch) {
        DeviceBuffer out = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * hd));
        be.gemm(false, true, b, hd, k, 1f, src, 0, k, p(name + ".weight"), 0, k, 0f, out, 0, hd);
        TrainKernels.biasActFwd(be, b, hd, TrainKernels.Act.TANH, out, p(name + ".bias"), out);
        return out;
    }

    /**
     * Backward of {@link #linearTanh} for the gradient {@code dout[at..]} of its output: sets the layer's weight and
     * bias gradients and adds the input's gradient into encoder layer {@code el}'s directions of {@code dState}.
     */
    private void linearTanhBackward(DeviceBuffer src, DeviceBuffer out, DeviceTensor dout, long at, int b, int k, int hd,
                                    String name, DeviceTensor dState, int el, int width, List<AutoCloseable> scratch) {
        int de = cfg.encoder().directions();
        DeviceBuffer dpb = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * hd));
        be.copy(dout.buffer(), dout.offset() + at, dpb, 0, (long) b * hd);
        TrainKernels.biasActBwd(be, b, hd, TrainKernels.Act.TANH, out, dpb, dpb);
        be.launch(Kernels.COL_SUM, new long[] {hd}, b, hd, dpb, g(name + ".bias"), 0f);
        be.gemm(true, false, hd, k, b, 1f, dpb, 0, hd, src, 0, k, 0f, g(name + ".weight"), 0, k);
        DeviceBuffer dsrc = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * k));
        be.gemm(false, false, b, k, hd, 1f, dpb, 0, hd, p(name + ".weight"), 0, k, 0f, dsrc, 0, k);
        // dsrc [B, D, width] added as [D, B, width] into the layer's block: transpose's first two dimensions swapped.
        be.launch(Kernels.TRANSPOSE, new long[] {(long) width * de, b}, b, de, width, dsrc, 0, de, dState.buffer(),
                (int) (dState.offset() + (long) el * de * b * width), b, 1f);
    }

    /** {@code dst[doff..+n] = src[soff..+n]}, or {@code +=} when {@code accumulate}. */
    private void add(DeviceBuffer src, long soff, DeviceBuffer dst, long doff, int n, boolean accumulate) {
        be.launch(Kernels.TRANSPOSE, new long[] {n, 1}, 1, 1, n, src, (int) soff, 1, dst, (int) doff, 1, accumulate ? 1f : 0f);
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
     * {@link #sourceLengthsAndMask}); the encoder outputs, the bridge's start states and every later state stay there.
     * Each step embeds the tokens, runs the decoder (every layer's h, and c for an LSTM), Luong attention when the
     * model has it, the combine and output layers.
     */
    Decoder decoder(Seq2SeqBatch batch) {
        if (model.hostParameters().version() != hostVersion) upload();
        return new Decoder(batch);
    }

    final class Decoder implements DeviceStepModel {
        private final List<AutoCloseable> inputs = new ArrayList<>();
        private final List<AutoCloseable> rowsScratch = new ArrayList<>();
        private final int b, t;
        private final boolean attn = cfg.style() != AttentionStyle.NONE, bahdanau = cfg.style() == AttentionStyle.BAHDANAU;
        /** The encoder outputs and mask (null without attention) and the bridge's states {@code [Ld, B, hd]} (c0: LSTM). */
        private final DeviceTensor encY, mask, h0, c0;
        private DeviceTensor tiledEnc, tiledMask, h, c, attention;
        /** The last step's attention output, which {@link #attention} views; freed by the next step. */
        private DeviceAttentionOutput lastAtt;
        /** The embedded tokens {@code [1, rows, E]}; Bahdanau: with each row's context, {@code [1, rows, E + He]}. */
        private DeviceTensor xt, xc, logits;
        private DeviceBuffer comb;
        private int rows;

        private Decoder(Seq2SeqBatch batch) {
            t = batch.sourceSteps();
            b = batch.batch();
            int e = cfg.embeddingSize(), vs = cfg.sourceVocab();
            try {
                DeviceBuffer src = keep(inputs, be.allocate(DeviceBuffer.Type.I32, (long) t * b));
                be.upload(batch.source(), 0, src, 0, t * b);
                DeviceTensor[] lm = sourceLengthsAndMask(batch, src, inputs);
                mask = attn ? lm[1] : null;
                DeviceTensor xs = keep(inputs, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e));
                TrainKernels.embeddingFwd(be, t * b, e, vs, src, p("source_embedding.weight"), xs.buffer());
                DeviceRnnOutput enc = keep(inputs, model.encoderLayer().forward(new DeviceRnnInput(xs, null, null, lm[0])));
                encY = attn ? enc.y() : null;
                BridgeOut br = bridgeForward(enc, b, inputs);
                h0 = br.h0();
                c0 = br.c0();
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
            int e = cfg.embeddingSize(), hd = cfg.decoder().hiddenSize(), ld = cfg.decoder().numLayers();
            int he = cfg.encoder().outputWidth();
            h = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, rows, hd));
            c = c0 == null ? null : keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, ld, rows, hd));
            if (k == 1) {
                tiledEnc = encY;
                tiledMask = mask;
                h.copyFrom(h0);
                if (c != null) c.copyFrom(c0);
            } else {
                // Row b·k + j is a copy of item b: one strided copy per j for the [T·B, He] encoder rows and the
                // [Ld·B, hd] states (row l·B + b goes to l·B·k + b·k + j); the I32 mask in one repeat_rows_i32 (a float
                // copy kernel must not carry int bits).
                tiledEnc = attn ? keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, rows, he)) : null;
                tiledMask = attn ? keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.I32, rows, t)) : null;
                for (int j = 0; j < k; j++) {
                    if (attn) TrainKernels.copyStrided(be, t * b, he, encY.buffer(), (int) encY.offset(), he, tiledEnc.buffer(), j * he, k * he);
                    TrainKernels.copyStrided(be, ld * b, hd, h0.buffer(), (int) h0.offset(), hd, h.buffer(), j * hd, k * hd);
                    if (c != null) TrainKernels.copyStrided(be, ld * b, hd, c0.buffer(), (int) c0.offset(), hd, c.buffer(), j * hd, k * hd);
                }
                if (attn) {
                    if (mask.offset() != 0) throw new IllegalStateException("decoder: a source mask at offset " + mask.offset());
                    TrainKernels.repeatRowsI32(be, b, t, k, mask.buffer(), tiledMask.buffer());
                }
            }
            xt = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, e));
            xc = bahdanau ? keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, e + he)) : null;
            comb = keep(rowsScratch, be.allocate(DeviceBuffer.Type.F32, (long) rows * cfg.combineSize()));
            logits = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, rows, cfg.targetVocab()));
        }

        @Override
        public DeviceTensor step(DeviceBuffer tok) {
            if (h == null) throw new IllegalStateException("decoder: start(rowsPerItem) before step");
            int n = rows, e = cfg.embeddingSize(), vt = cfg.targetVocab(), hd = cfg.decoder().hiddenSize();
            TrainKernels.embeddingFwd(be, n, e, vt, tok, p("target_embedding.weight"), xt.buffer());
            // The step's attention output: owned here until lastAtt takes it (closed if anything throws before).
            DeviceAttentionOutput att = null;
            try {
                if (bahdanau) {
                    // The context of the previous state's top layer enters the decoder input.
                    int ld = cfg.decoder().numLayers();
                    att = model.attentionModule().forward(h.view((long) (ld - 1) * n * hd, 1, n, hd), tiledEnc, tiledMask);
                    inputWithContext(xt.buffer(), 0, att.context(), xc, n);
                }
                try (DeviceRnnOutput out = model.decoderLayer().forward(new DeviceRnnInput(bahdanau ? xc : xt, h, c, null))) {
                    if (attn && !bahdanau) att = model.attentionModule().forward(out.y(), tiledEnc, tiledMask);
                    head(out.y().buffer(), out.y().offset(), att == null ? null : att.context(), n, comb, logits.buffer());
                    h.copyFrom(out.hN());
                    if (c != null) c.copyFrom(out.cN());
                    closeAttention();
                    if (att != null) {
                        lastAtt = att;
                        attention = att.weights().reshape(n, t);
                        att = null;
                    }
                }
            } finally {
                if (att != null) att.close();
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
            DeviceDecoding.gatherRows(h, parents);
            if (c != null) DeviceDecoding.gatherRows(c, parents);
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
