package dev.recur.nn.lm;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.TrainKernels;
import dev.recur.config.CellType;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.nn.Resources;
import dev.recur.nn.decode.DeviceDecoding;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.layers.Parameters;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link LanguageModel}'s inference on its device backend: generation ({@link Decoder}, a {@link DeviceStepModel}
 * for {@link dev.recur.nn.decode.DeviceDecoding}) and evaluation ({@link #meanLoss}). Both read the embedding and the
 * output layer from device buffers laid out as {@link LanguageModelTrainer}'s (the embedding {@code [V,E]}; the output
 * layer as {@code [bias (V) | weight (V,H)]}) and the recurrent weights from the network's own device weight space:
 * the open device trainer's buffers when there is one (nothing uploaded, nothing pulled to the host), else
 * {@link OwnWeights}, uploaded once and again only after a host write the parameters' version declares.
 */
final class LanguageModelDevice {
    private LanguageModelDevice() {}

    /** The embedding {@code [V,E]} and the output layer {@code [bias V | weight V·H]} on the device. */
    record Weights(DeviceBuffer embedding, DeviceBuffer output) {}

    /** Rows of logits one evaluation chunk holds at most ({@code rows · V} floats): 16 MB of scratch. */
    static final long CHUNK_LOGITS = 1L << 22;

    /**
     * The device copy of the embedding and output layer of a model that has no device trainer open (a model that only
     * generates or evaluates): uploaded at first use and kept, re-uploaded when the host parameters' version moved.
     */
    static final class OwnWeights implements AutoCloseable {
        private final LanguageModel lm;
        private final DeviceBackend be;
        private final DeviceBuffer emb, out;
        private long version = -1;

        OwnWeights(LanguageModel lm, DeviceBackend be) {
            this.lm = lm;
            this.be = be;
            int v = lm.vocabSize(), e = lm.embeddingLayer().dim(), h = lm.rnnConfig().outputWidth();
            emb = be.allocate(DeviceBuffer.Type.F32, (long) v * e);
            try {
                out = be.allocate(DeviceBuffer.Type.F32, v + (long) v * h);
            } catch (RuntimeException | Error x) {
                emb.close();
                throw x;
            }
        }

        Weights current() {
            Parameters p = lm.hostParameters();
            if (p.version() != version) {
                int v = lm.vocabSize(), e = lm.embeddingLayer().dim(), h = lm.rnnConfig().outputWidth();
                be.uploadDoubles(p.value(lm.embeddingLayer().weightName()).data(), 0, emb, 0, v * e);
                be.uploadDoubles(p.value(lm.outputLayer().biasName()).data(), 0, out, 0, v);
                be.uploadDoubles(p.value(lm.outputLayer().weightName()).data(), 0, out, v, v * h);
                version = p.version();
            }
            return new Weights(emb, out);
        }

        @Override
        public void close() {
            Resources.closeAll(new ArrayList<>(List.of(emb, out)));
        }
    }

    /**
     * The mean cross-entropy of next-token prediction over {@code [T, B]} time-major positions from zero states, on the
     * device with the inference forward (no dropout): the ids are already in {@code ids} at {@code idsOff} and the
     * targets in {@code targets} at {@code tgOff} (the caller's one upload); long inputs run in chunks of time steps
     * with the state carried on the device, each chunk's per-position losses copied into one buffer, and one
     * {@code softmax_xent_mean} over all of them: 4 bytes down, one wait.
     */
    static double meanLoss(LanguageModel lm, DeviceBuffer ids, long idsOff, DeviceBuffer targets, long tgOff, int t, int b) {
        return meanLoss(lm, ids, idsOff, targets, tgOff, t, b, CHUNK_LOGITS);
    }

    /** {@link #meanLoss} with chunks of at most {@code chunkLogits / (B·V)} time steps (at least one). */
    static double meanLoss(LanguageModel lm, DeviceBuffer ids, long idsOff, DeviceBuffer targets, long tgOff, int t, int b,
                           long chunkLogits) {
        DeviceBackend be = (DeviceBackend) lm.rnnLayer().rnn().backend();
        Weights w = lm.deviceWeights();
        int v = lm.vocabSize(), e = lm.embeddingLayer().dim(), h = lm.rnnConfig().outputWidth(), pad = lm.padId();
        long n = (long) t * b;
        int tc = (int) Math.max(1, Math.min(t, chunkLogits / ((long) b * v)));
        List<AutoCloseable> scratch = new ArrayList<>();
        try {
            DeviceBuffer allTg = keep(scratch, be.allocate(DeviceBuffer.Type.I32, n));
            DeviceBuffer allLoss = keep(scratch, be.allocate(DeviceBuffer.Type.F32, n));
            DeviceBuffer mean = keep(scratch, be.allocate(DeviceBuffer.Type.F32, 1));
            be.copy(targets, tgOff, allTg, 0, n);
            DeviceBuffer cIds = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) tc * b));
            DeviceBuffer cTg = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) tc * b));
            DeviceBuffer cLoss = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) tc * b));
            DeviceBuffer logits = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) tc * b * v));
            DeviceTensor x = keep(scratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, tc, b, e));
            DeviceRnnOutput prev = null;
            try {
                for (int s = 0; s < t; s += tc) {
                    int steps = Math.min(tc, t - s), rows = steps * b;
                    be.copy(ids, idsOff + (long) s * b, cIds, 0, rows);
                    be.copy(allTg, (long) s * b, cTg, 0, rows);
                    DeviceTensor xs = x.view(0, steps, b, e);
                    TrainKernels.embeddingFwd(be, rows, e, v, cIds, w.embedding(), xs.buffer());
                    DeviceRnnInput in = new DeviceRnnInput(xs, prev == null ? null : prev.hN(), prev == null ? null : prev.cN(), null);
                    DeviceRnnOutput out = lm.rnnLayer().forward(in);
                    if (prev != null) prev.close();
                    prev = out;
                    DeviceTensor y = out.y();
                    be.gemm(false, true, rows, v, h, 1f, y.buffer(), y.offset(), h, w.output(), v, h, 0f, logits, 0, v);
                    TrainKernels.biasActFwd(be, rows, v, TrainKernels.Act.IDENTITY, logits, w.output(), logits);
                    TrainKernels.softmaxXentFwdBwd(be, rows, v, pad, logits, cTg, cLoss, logits);
                    be.copy(cLoss, 0, allLoss, (long) s * b, rows);
                }
            } finally {
                if (prev != null) prev.close();
            }
            if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("positions: expected at most " + Integer.MAX_VALUE + ", got " + n);
            TrainKernels.softmaxXentMean(be, (int) n, pad, allTg, allLoss, mean);
            float[] got = new float[1];
            be.download(mean, 0, got, 0, 1);
            return got[0];
        } finally {
            Resources.closeAll(scratch);
        }
    }

    /**
     * The model positioned after each prompt but its last token, on the device: the prompts go up once (ids
     * {@code [T,B]} padded and their lengths, one I32 upload), the network reads them there and every later state, the
     * logits and the weights stay there. Each step embeds the tokens ({@code embedding_fwd}), runs one step of the
     * network from the state ({@code h}, and {@code c} for an LSTM; every layer) and the output layer (a GEMM and
     * {@code bias_act_fwd}).
     */
    static final class Decoder implements DeviceStepModel {
        private final LanguageModel lm;
        private final DeviceBackend be;
        private final int b, v, e, hout, hc, layers;
        private final boolean lstm;
        private final List<AutoCloseable> inputs = new ArrayList<>();
        private final List<AutoCloseable> rowsScratch = new ArrayList<>();
        private final DeviceTensor h0, c0;
        private DeviceTensor h, c, x, y, logits;
        private int rows;

        Decoder(LanguageModel lm, List<int[]> prompts) {
            this.lm = lm;
            this.be = (DeviceBackend) lm.rnnLayer().rnn().backend();
            this.b = prompts.size();
            this.v = lm.vocabSize();
            this.e = lm.embeddingLayer().dim();
            this.hout = lm.rnnConfig().outSize();
            this.hc = lm.rnnConfig().hiddenSize();
            this.layers = lm.rnnConfig().numLayers();
            this.lstm = lm.rnnConfig().cell() == CellType.LSTM;
            int t = 1;
            int[] len = new int[b];
            for (int i = 0; i < b; i++) {
                len[i] = prompts.get(i).length - 1;
                t = Math.max(t, len[i]);
            }
            try {
                Weights w = lm.deviceWeights();
                h0 = keep(inputs, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, layers, b, hout));
                c0 = lstm ? keep(inputs, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, layers, b, hc)) : null;
                boolean any = false;
                for (int l : len) any |= l > 0;
                if (any) {
                    // One upload: the padded time-major ids [T,B], then the lengths [B] (a prompt of one token runs one
                    // padding step whose state is then zeroed, as the host stepModel does).
                    int[] packed = new int[t * b + b];
                    java.util.Arrays.fill(packed, 0, t * b, Math.max(lm.padId(), 0));
                    for (int i = 0; i < b; i++) {
                        for (int s = 0; s < len[i]; s++) packed[s * b + i] = prompts.get(i)[s];
                        packed[t * b + i] = Math.max(1, len[i]);
                    }
                    try (DeviceTensor up = DeviceTensor.ofInts(be, packed, t * b + b);
                         DeviceTensor xs = DeviceTensor.allocate(be, DeviceBuffer.Type.F32, t, b, e)) {
                        TrainKernels.embeddingFwd(be, t * b, e, v, up.buffer(), w.embedding(), xs.buffer());
                        try (DeviceRnnOutput out = lm.rnnLayer().forward(new DeviceRnnInput(xs, null, null, up.view((long) t * b, b)))) {
                            h0.copyFrom(out.hN());
                            if (lstm) c0.copyFrom(out.cN());
                        }
                    }
                    for (int i = 0; i < b; i++) {
                        if (len[i] > 0) continue;
                        for (int l = 0; l < layers; l++) {
                            be.fill(h0.buffer(), h0.offset() + (long) (l * b + i) * hout, hout, 0.0);
                            if (lstm) be.fill(c0.buffer(), c0.offset() + (long) (l * b + i) * hc, hc, 0.0);
                        }
                    }
                } else {
                    h0.fill(0);
                    if (lstm) c0.fill(0);
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
            return v;
        }

        @Override
        public int rows() {
            return rows;
        }

        @Override
        public void start(int k) {
            if (k <= 0) throw new IllegalArgumentException("rowsPerItem: expected > 0, got " + k);
            Resources.closeAll(rowsScratch);
            rowsScratch.clear();
            h = c = x = y = logits = null;
            rows = b * k;
            h = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, layers, rows, hout));
            c = lstm ? keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, layers, rows, hc)) : null;
            tile(h0, h, hout, k);
            if (lstm) tile(c0, c, hc, k);
            x = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, e));
            y = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, 1, rows, lm.rnnConfig().outputWidth()));
            logits = keep(rowsScratch, DeviceTensor.allocate(be, DeviceBuffer.Type.F32, rows, v));
        }

        /** Row {@code i·k + j} of every layer of {@code dst [L, B·k, w]} = row {@code i} of {@code src [L, B, w]}. */
        private void tile(DeviceTensor src, DeviceTensor dst, int w, int k) {
            if (k == 1) {
                dst.copyFrom(src);
                return;
            }
            for (int l = 0; l < layers; l++) {
                for (int j = 0; j < k; j++) {
                    TrainKernels.copyStrided(be, b, w, src.buffer(), (int) src.offset() + l * b * w, w,
                            dst.buffer(), (int) dst.offset() + l * rows * w + j * w, k * w);
                }
            }
        }

        @Override
        public DeviceTensor step(DeviceBuffer tok) {
            if (h == null) throw new IllegalStateException("decoder: start(rowsPerItem) before step");
            Weights w = lm.deviceWeights();
            int n = rows, ho = lm.rnnConfig().outputWidth();
            TrainKernels.embeddingFwd(be, n, e, v, tok, w.embedding(), x.buffer());
            // The new state is written over the old one in place: the network copies its initial state into its own
            // workspace before any layer writes a final state, and the backend's stream runs in order.
            lm.rnnLayer().syncToDevice();
            lm.rnnLayer().rnn().forward(new DeviceRnnInput(x, h, c, null), DeviceRnnOutput.into(y, h, c)).close();
            be.gemm(false, true, n, v, ho, 1f, y.buffer(), y.offset(), ho, w.output(), v, ho, 0f, logits.buffer(), 0, v);
            TrainKernels.biasActFwd(be, n, v, TrainKernels.Act.IDENTITY, logits.buffer(), w.output(), logits.buffer());
            return logits;
        }

        @Override
        public DeviceTensor attention() {
            return null;
        }

        @Override
        public void select(DeviceBuffer parents) {
            if (h == null) throw new IllegalStateException("decoder: start(rowsPerItem) before select");
            DeviceDecoding.gatherRows(h, parents);
            if (lstm) DeviceDecoding.gatherRows(c, parents);
        }

        @Override
        public void close() {
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
}
