package dev.recur.nn.decode;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.TrainKernels;
import dev.recur.nn.Resources;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Decoding that runs on the device over a {@link DeviceStepModel}: the tokens chosen at each step are fed back on
 * the device, and the host downloads the tokens (and, when asked, their log-probabilities and attention weights)
 * once at the end. Every decoder runs all {@code maxLength} steps, since stopping early would need a look at the
 * tokens, a blocking wait, every step; the host cuts each row at its end token afterwards, which gives exactly
 * what the host decoders ({@link Greedy}) give.
 */
public final class DeviceDecoding {
    private DeviceDecoding() {}

    /**
     * Greedy decoding ({@code argmax_rows}, the lowest id on ties, as {@link Greedy}) of every item of {@code model}
     * from {@code startTokens[b]} (one per item).
     *
     * @param details also compute each chosen token's log-probability ({@code softmax_xent_fwd_bwd} with the argmax
     *                as target) and keep the attention weights; without it the result's {@code logProb},
     *                {@code score} and {@code attention} are null and only the token ids come back
     */
    public static Decoded greedy(DeviceStepModel model, int[] startTokens, int endToken, int maxLength, boolean details) {
        return run(model, startTokens, endToken, maxLength, details, 0, 0, 0);
    }

    /**
     * Temperature sampling ({@code sample_rows}: each row draws from {@code softmax(logits / temperature)}) of every
     * item of {@code model} from {@code startTokens[b]}, on the device as {@link #greedy}: all {@code maxLength} steps
     * there, one download at the end, the host cuts each row at {@code endToken}. Step {@code s} of row {@code r}
     * draws at the counter-based uniform {@code TrainKernels.sampleUniform(seed, s, r)}, so the same seed gives the
     * same tokens on every run and, up to float32 rounding at a cumulative-probability boundary, on every device
     * backend. It is not the host {@link Sampler}'s stream for that seed (a different generator): each is
     * reproducible on its own.
     *
     * @param temperature a finite value > 0 (lower: towards greedy)
     * @param details     also return each token's log-probability under the untempered softmax (as {@link Sampler}
     *                    reports it; {@code sample_rows} computes it in the same launch) and the attention weights
     */
    public static Decoded sample(DeviceStepModel model, int[] startTokens, int endToken, int maxLength, double temperature,
                                 long seed, boolean details) {
        return sample(model, startTokens, endToken, maxLength, temperature, 0, seed, details);
    }

    /**
     * {@link #sample(DeviceStepModel, int[], int, int, double, long, boolean)} from the {@code topK} most likely tokens
     * of each step ({@code topk_rows}' K-th logit cuts the rest in {@code sample_rows}; tokens tied with it are kept);
     * 0, or {@code topK >= V}, draws from them all. The log-probabilities stay those of the untempered, uncut softmax.
     */
    public static Decoded sample(DeviceStepModel model, int[] startTokens, int endToken, int maxLength, double temperature,
                                 int topK, long seed, boolean details) {
        if (topK < 0) throw new IllegalArgumentException("topK: expected >= 0 (0: no cut), got " + topK);
        float t32 = (float) temperature;   // the kernel divides in float32
        if (!(temperature > 0) || !Double.isFinite(temperature) || t32 == 0f || Float.isInfinite(t32)) {
            throw new IllegalArgumentException("temperature: expected a finite value > 0 (and within float32), got " + temperature);
        }
        return run(model, startTokens, endToken, maxLength, details, temperature, topK, seed);
    }

    /** Greedy when {@code temperature} is 0, else sampling at that temperature. */
    private static Decoded run(DeviceStepModel model, int[] startTokens, int endToken, int maxLength, boolean details,
                               double temperature, int topK, long seed) {
        if (model == null) throw new IllegalArgumentException("model: must not be null");
        int b = model.batchSize(), v = model.vocabSize();
        Sampler.checkStarts(startTokens, b, v);
        if (endToken < -1 || endToken >= v) throw new IllegalArgumentException("endToken: expected -1 (none) or in [0, " + v + "), got " + endToken);
        if (maxLength <= 0) throw new IllegalArgumentException("maxLength: expected > 0, got " + maxLength);
        boolean sampling = temperature > 0;
        DeviceBackend be = model.backend();
        List<AutoCloseable> scratch = new ArrayList<>();
        try {
            model.start(1);
            DeviceBuffer tok = keep(scratch, be.allocate(DeviceBuffer.Type.I32, b));
            uploadStarts(be, startTokens, tok);
            DeviceBuffer allTok = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) maxLength * b));
            // allLp holds -log p per step (greedy: softmax_xent's loss) or +log p (sampling: sample_rows' logp).
            DeviceBuffer allLp = null, allAtt = null, lp = null, dl = null, kVals = null, kIdx = null;
            boolean topCut = sampling && topK > 0 && topK < v;
            if (topCut) {
                kVals = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * topK));
                kIdx = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) b * topK));
            }
            int t = -1;
            if (details) {
                allLp = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) maxLength * b));
                lp = keep(scratch, be.allocate(DeviceBuffer.Type.F32, b));
                if (!sampling) dl = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * v));
            }
            for (int step = 0; step < maxLength; step++) {
                DeviceTensor logits = model.step(tok);
                if (topCut) {
                    TrainKernels.topkRows(be, b, v, topK, logits.buffer(), kVals, kIdx);
                    TrainKernels.sampleRows(be, b, v, (float) temperature, seed, step, logits.buffer(), kVals, topK - 1, topK, tok, lp);
                } else if (sampling) {
                    TrainKernels.sampleRows(be, b, v, (float) temperature, seed, step, logits.buffer(), tok, lp);
                } else {
                    TrainKernels.argmaxRows(be, b, v, logits.buffer(), tok);
                    if (details) TrainKernels.softmaxXentFwdBwd(be, b, v, -1, logits.buffer(), tok, lp, dl);
                }
                be.copy(tok, 0, allTok, (long) step * b, b);
                if (details) {
                    be.copy(lp, 0, allLp, (long) step * b, b);
                    DeviceTensor att = model.attention();
                    if (att != null) {
                        if (allAtt == null) {
                            t = att.dim(1);
                            allAtt = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) maxLength * b * t));
                        }
                        be.copy(att.buffer(), att.offset(), allAtt, (long) step * b * t, (long) b * t);
                    }
                }
            }
            int[] toks = new int[maxLength * b];
            be.download(allTok, 0, toks, 0, toks.length);
            float[] nlls = null, atts = null;
            if (details) {
                nlls = new float[maxLength * b];
                be.download(allLp, 0, nlls, 0, nlls.length);
                if (sampling) for (int i = 0; i < nlls.length; i++) nlls[i] = -nlls[i];
                if (allAtt != null) {
                    atts = new float[maxLength * b * t];
                    be.download(allAtt, 0, atts, 0, atts.length);
                }
            }
            return cut(toks, nlls, atts, b, t, endToken, maxLength);
        } finally {
            Resources.closeAll(scratch);
        }
    }

    /**
     * Batched beam search ({@link BeamSearch}'s semantics: ranking by cumulative log-probability, finished hypotheses
     * kept and competing by the same score, the answer by {@code logProb / length^alpha} with finished ones preferred,
     * ties to the lower (row, token), so width 1 is {@link #greedy}) of every item of {@code model} from
     * {@code startTokens[b]}, all on the device: per step the model's step, {@code beam_candidates} (log-softmax plus
     * the rows' scores), {@code topk_rows} over each item's {@code K·V} candidates, {@code beam_update} (parents,
     * tokens, scores, the step's row of the token and parent histories) and the model's {@link DeviceStepModel#select};
     * after {@code search.maxLength()} steps {@code beam_backtrace} walks each item's answer back. The host downloads
     * the answers' tokens once ({@code 4·B·maxLength} bytes, the end token marking each length), and with
     * {@code details} their log-probability and score ({@code 8·B} bytes) and attention ({@code 4·B·maxLength·T}
     * bytes, gathered on the device from a per-step copy of the model's attention): one to three blocking waits.
     *
     * <p>Scores are float32 on the device (float64 on the host), so a near tie between two hypotheses (closer than
     * float32 rounding of a sum of log-probabilities) may break the other way than {@link BeamSearch} breaks it.
     *
     * @param details also return each answer's log-probability, score and attention weights (null for a model without
     *                attention); without it the result's {@code logProb}, {@code score} and {@code attention} are null
     */
    public static Decoded beamSearch(DeviceStepModel model, int[] startTokens, int endToken, BeamSearch search, boolean details) {
        if (model == null) throw new IllegalArgumentException("model: must not be null");
        if (search == null) throw new IllegalArgumentException("search: must not be null");
        int b = model.batchSize(), v = model.vocabSize(), k = search.width(), len = search.maxLength(), n = b * k;
        Sampler.checkStarts(startTokens, b, v);
        Sampler.checkToken("endToken", endToken, v);
        if ((long) n * v > Integer.MAX_VALUE || (long) len * n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("search: width " + k + " over " + b + " items, vocabulary " + v
                    + " and " + len + " steps exceeds the kernels' int indexes");
        }
        DeviceBackend be = model.backend();
        List<AutoCloseable> scratch = new ArrayList<>();
        try {
            model.start(k);
            DeviceBuffer tok = keep(scratch, be.allocate(DeviceBuffer.Type.I32, n));
            boolean same = Arrays.stream(startTokens).allMatch(x -> x == startTokens[0]);
            if (same) {
                be.fill(tok, 0, n, startTokens[0]);
            } else {
                int[] rows = new int[n];
                for (int r = 0; r < n; r++) rows[r] = startTokens[r / k];
                be.upload(rows, 0, tok, 0, n);
            }
            DeviceBuffer score = keep(scratch, be.allocate(DeviceBuffer.Type.F32, n));
            DeviceBuffer cand = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) n * v));
            DeviceBuffer vals = keep(scratch, be.allocate(DeviceBuffer.Type.F32, n));
            DeviceBuffer idx = keep(scratch, be.allocate(DeviceBuffer.Type.I32, n));
            DeviceBuffer parents = keep(scratch, be.allocate(DeviceBuffer.Type.I32, n));
            DeviceBuffer histTok = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) len * n));
            DeviceBuffer histPar = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) len * n));
            DeviceBuffer allAtt = null;
            int t = -1;
            for (int step = 0; step < len; step++) {
                DeviceTensor logits = model.step(tok);
                TrainKernels.beamCandidates(be, b, k, v, step, endToken, logits.buffer(), tok, score, cand);
                TrainKernels.topkRows(be, b, k * v, k, cand, vals, idx);
                TrainKernels.beamUpdate(be, b, k, v, step, endToken, vals, idx, parents, tok, score, histTok, histPar);
                if (details) {
                    // The step's attention by the rows before the reordering: beam_backtrace's `at` indexes these.
                    DeviceTensor att = model.attention();
                    if (att != null) {
                        if (allAtt == null) {
                            t = att.dim(1);
                            allAtt = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) len * n * t));
                        }
                        be.copy(att.buffer(), att.offset(), allAtt, (long) step * n * t, (long) n * t);
                    }
                }
                if (step + 1 < len) model.select(parents);
            }
            DeviceBuffer out = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) b * len));
            DeviceBuffer at = keep(scratch, be.allocate(DeviceBuffer.Type.I32, (long) b * len));
            DeviceBuffer scores = keep(scratch, be.allocate(DeviceBuffer.Type.F32, 2L * b));
            TrainKernels.beamBacktrace(be, b, k, len, endToken, (float) search.lengthPenaltyAlpha(), score, histTok,
                    histPar, out, at, scores);
            int[] toks = new int[b * len];
            be.download(out, 0, toks, 0, toks.length);
            float[] sc = null, atts = null;
            if (details) {
                sc = new float[2 * b];
                be.download(scores, 0, sc, 0, sc.length);
                if (allAtt != null) {
                    DeviceBuffer picked = keep(scratch, be.allocate(DeviceBuffer.Type.F32, (long) b * len * t));
                    TrainKernels.embeddingFwd(be, b * len, t, len * n, at, allAtt, picked);
                    atts = new float[b * len * t];
                    be.download(picked, 0, atts, 0, atts.length);
                }
            }
            return answers(toks, sc, atts, b, t, endToken, len);
        } finally {
            Resources.closeAll(scratch);
        }
    }

    /**
     * The host's share of {@link #beamSearch}: from the item-major downloads {@code toks [B, maxLength]} (each answer's
     * tokens, end tokens from its end on), {@code sc [B, 2]} (log-probability, score; or null) and
     * {@code atts [B, maxLength, T]} (or null), each answer's tokens before its end token and the attention rows of the
     * steps up to and including it.
     */
    static Decoded answers(int[] toks, float[] sc, float[] atts, int b, int t, int endToken, int maxLength) {
        List<int[]> seqs = new ArrayList<>();
        List<double[][]> attention = atts != null ? new ArrayList<>() : null;
        boolean[] finished = new boolean[b];
        double[] logProb = sc != null ? new double[b] : null, score = sc != null ? new double[b] : null;
        for (int i = 0; i < b; i++) {
            int e = 0;
            while (e < maxLength && toks[i * maxLength + e] != endToken) e++;
            finished[i] = e < maxLength;
            seqs.add(Arrays.copyOfRange(toks, i * maxLength, i * maxLength + e));
            if (sc != null) {
                logProb[i] = sc[2 * i];
                score[i] = sc[2 * i + 1];
            }
            if (atts != null) {
                double[][] rows = new double[finished[i] ? e + 1 : maxLength][t];
                for (int s = 0; s < rows.length; s++) {
                    for (int j = 0; j < t; j++) rows[s][j] = atts[(i * maxLength + s) * t + j];
                }
                attention.add(rows);
            }
        }
        return new Decoded(seqs, finished, logProb, score, attention);
    }

    /**
     * The host's share: each row's tokens up to its end token, its summed log-probability and attention rows, from
     * the step-major downloads {@code toks [maxLength, B]}, {@code nlls} (the chosen tokens' {@code -log p}, or null)
     * and {@code atts [maxLength, B, T]} (or null).
     */
    static Decoded cut(int[] toks, float[] nlls, float[] atts, int b, int t, int endToken, int maxLength) {
        List<int[]> seqs = new ArrayList<>();
        List<double[][]> attention = atts != null ? new ArrayList<>() : null;
        boolean[] finished = new boolean[b];
        double[] logProb = nlls != null ? new double[b] : null;
        for (int r = 0; r < b; r++) {
            List<Integer> out = new ArrayList<>();
            List<double[]> rows = new ArrayList<>();
            for (int step = 0; step < maxLength && !finished[r]; step++) {
                int next = toks[step * b + r];
                if (nlls != null) logProb[r] -= nlls[step * b + r];
                if (atts != null) {
                    double[] a = new double[t];
                    for (int j = 0; j < t; j++) a[j] = atts[(step * b + r) * t + j];
                    rows.add(a);
                }
                if (next == endToken) finished[r] = true;
                else out.add(next);
            }
            seqs.add(out.stream().mapToInt(Integer::intValue).toArray());
            if (atts != null) attention.add(rows.toArray(new double[0][]));
        }
        return new Decoded(seqs, finished, logProb, logProb == null ? null : logProb.clone(), attention);
    }

    /**
     * Reorders a decoder state {@code [L, rows, W]} on the device: row {@code r} of every layer takes the values of
     * row {@code parents[r]} (I32 {@code [rows]}), what {@link DeviceStepModel#select} does. {@code embedding_fwd} is
     * the row gather ({@code out[r,:] = table[parents[r],:]}); it reads its table from element 0, so a layer anywhere
     * else is read through a copy.
     */
    public static void gatherRows(DeviceTensor state, DeviceBuffer parents) {
        DeviceBackend be = state.backend();
        int layers = state.dim(0), rows = state.dim(1), w = state.dim(2);
        long per = (long) rows * w;
        boolean copies = layers > 1 || state.offset() != 0;
        try (DeviceTensor out = DeviceTensor.allocate(be, DeviceBuffer.Type.F32, rows, w);
             DeviceTensor table = copies ? DeviceTensor.allocate(be, DeviceBuffer.Type.F32, rows, w) : null) {
            for (int l = 0; l < layers; l++) {
                long at = state.offset() + l * per;
                DeviceBuffer from = state.buffer();
                if (at != 0) {
                    be.copy(state.buffer(), at, table.buffer(), 0, per);
                    from = table.buffer();
                }
                TrainKernels.embeddingFwd(be, rows, w, rows, parents, from, out.buffer());
                be.copy(out.buffer(), 0, state.buffer(), at, per);
            }
        }
    }

    /** One fill when every item starts from the same token (the usual BOS), else the ids themselves. */
    static void uploadStarts(DeviceBackend be, int[] startTokens, DeviceBuffer tok) {
        boolean same = Arrays.stream(startTokens).allMatch(x -> x == startTokens[0]);
        if (same) be.fill(tok, 0, startTokens.length, startTokens[0]);
        else be.upload(startTokens, 0, tok, 0, startTokens.length);
    }

    static <T extends AutoCloseable> T keep(List<AutoCloseable> list, T c) {
        list.add(c);
        return c;
    }
}
