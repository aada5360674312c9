package dev.recur.nn.decode;

import dev.recur.nn.layers.Activations;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Batched beam search: {@code width} hypotheses per batch item, all rows of all items advanced by one
 * {@link StepModel#step} call per step.
 *
 * <p>Within the beam, hypotheses are ranked by their cumulative log-probability; a hypothesis that produced
 * the end token is finished and stays in the beam unchanged (it competes with the open ones by the same
 * cumulative score). The search stops when every hypothesis of every item is finished or after
 * {@code maxLength} tokens. The answer of each item is the hypothesis with the best final score
 * {@code logProb / length^alpha}, {@code length} counting the generated tokens including the end token
 * ({@code alpha = 0}: no length normalisation; {@code alpha = 1}: the mean log-probability per token);
 * finished hypotheses are preferred over unfinished ones. Ties go to the lower row, i.e. the hypothesis that
 * ranked higher; candidate ties go to the lower (row, token) pair, so width 1 is exactly {@link Greedy}.
 */
public final class BeamSearch {
    private final int width;
    private final double alpha;
    private final int maxLength;

    public BeamSearch(int width, double lengthPenaltyAlpha, int maxLength) {
        if (width <= 0) throw new IllegalArgumentException("width: expected > 0, got " + width);
        if (!(lengthPenaltyAlpha >= 0) || !Double.isFinite(lengthPenaltyAlpha)) {
            throw new IllegalArgumentException("lengthPenaltyAlpha: expected a finite value >= 0, got " + lengthPenaltyAlpha);
        }
        if (maxLength <= 0) throw new IllegalArgumentException("maxLength: expected > 0, got " + maxLength);
        this.width = width;
        this.alpha = lengthPenaltyAlpha;
        this.maxLength = maxLength;
    }

    public int width() {
        return width;
    }

    /** The length penalty's exponent {@code alpha} of {@link #normalised}. */
    public double lengthPenaltyAlpha() {
        return alpha;
    }

    /** The most tokens a hypothesis generates, its end token included. */
    public int maxLength() {
        return maxLength;
    }

    /** The length-normalised score of a hypothesis. */
    public double normalised(double logProb, int length) {
        return alpha == 0 ? logProb : logProb / Math.pow(Math.max(1, length), alpha);
    }

    public Decoded decode(StepModel model, int startToken, int endToken) {
        return decode(model, Sampler.same(model, startToken), endToken);
    }

    /** With a start token per batch item. */
    public Decoded decode(StepModel model, int[] startTokens, int endToken) {
        if (model == null) throw new IllegalArgumentException("model: must not be null");
        int v = model.vocabSize();
        int b = model.batchSize(), k = width, n = b * k;
        Sampler.checkStarts(startTokens, b, v);
        Sampler.checkToken("endToken", endToken, v);
        DecoderState state = model.start(k);
        int[] tokens = new int[n];
        for (int r = 0; r < n; r++) tokens[r] = startTokens[r / k];
        double[] score = new double[n];
        // Only the first row of each item is live at the start: the K rows are identical and would
        // otherwise fill the beam with K copies of the same hypothesis.
        for (int r = 0; r < n; r++) score[r] = r % k == 0 ? 0 : Double.NEGATIVE_INFINITY;
        boolean[] finished = new boolean[n];
        int[][] hist = new int[n][0];
        double[][][] att = new double[n][0][];
        boolean hasAttention = true;
        for (int step = 0; step < maxLength; step++) {
            StepModel.Step s = model.step(tokens, state);
            double[] lp = Activations.logSoftmax(s.logits()).data();
            hasAttention &= s.attention() != null;
            int tw = s.attention() == null ? 0 : s.attention().dim(1);
            int[] parent = new int[n];
            int[] nextTok = new int[n];
            double[] nextScore = new double[n];
            boolean[] nextFinished = new boolean[n];
            int[][] nextHist = new int[n][];
            double[][][] nextAtt = new double[n][][];
            for (int item = 0; item < b; item++) {
                // Candidates: (score, row, token); a finished row offers only itself (token = -1).
                double[] cs = new double[k * (v + 1)];
                int[] cr = new int[cs.length];
                int[] ct = new int[cs.length];
                int m = 0;
                for (int j = 0; j < k; j++) {
                    int r = item * k + j;
                    if (score[r] == Double.NEGATIVE_INFINITY) continue;
                    if (finished[r]) {
                        cs[m] = score[r];
                        cr[m] = r;
                        ct[m++] = -1;
                        continue;
                    }
                    for (int t = 0; t < v; t++) {
                        cs[m] = score[r] + lp[r * v + t];
                        cr[m] = r;
                        ct[m++] = t;
                    }
                }
                boolean[] taken = new boolean[m];
                for (int j = 0; j < k; j++) {
                    int dst = item * k + j;
                    int best = -1;
                    for (int c = 0; c < m; c++) {
                        if (taken[c] || cs[c] == Double.NEGATIVE_INFINITY) continue;
                        if (best < 0 || cs[c] > cs[best]) best = c;
                    }
                    if (best < 0) {
                        // Fewer live candidates than beam slots (early steps with a tiny vocabulary): a dead row.
                        parent[dst] = item * k;
                        nextTok[dst] = endToken;
                        nextScore[dst] = Double.NEGATIVE_INFINITY;
                        nextFinished[dst] = true;
                        nextHist[dst] = hist[item * k];
                        nextAtt[dst] = att[item * k];
                        continue;
                    }
                    taken[best] = true;
                    int r = cr[best];
                    parent[dst] = r;
                    nextScore[dst] = cs[best];
                    if (ct[best] < 0) {
                        nextTok[dst] = endToken;
                        nextFinished[dst] = true;
                        nextHist[dst] = hist[r];
                        nextAtt[dst] = att[r];
                    } else {
                        int t = ct[best];
                        nextTok[dst] = t;
                        nextFinished[dst] = t == endToken;
                        nextHist[dst] = Arrays.copyOf(hist[r], hist[r].length + 1);
                        nextHist[dst][hist[r].length] = t;
                        if (s.attention() != null) {
                            nextAtt[dst] = Arrays.copyOf(att[r], att[r].length + 1);
                            nextAtt[dst][att[r].length] = Arrays.copyOfRange(s.attention().data(), r * tw, (r + 1) * tw);
                        } else {
                            nextAtt[dst] = att[r];
                        }
                    }
                }
            }
            tokens = nextTok;
            score = nextScore;
            finished = nextFinished;
            hist = nextHist;
            att = nextAtt;
            state = s.next().select(parent);
            boolean all = true;
            for (boolean f : finished) all &= f;
            if (all) break;
        }
        List<int[]> seqs = new ArrayList<>();
        List<double[][]> attention = hasAttention ? new ArrayList<>() : null;
        boolean[] done = new boolean[b];
        double[] logProb = new double[b];
        double[] best = new double[b];
        for (int item = 0; item < b; item++) {
            int pick = -1;
            double pickScore = 0;
            boolean pickFinished = false;
            for (int j = 0; j < k; j++) {
                int r = item * k + j;
                if (score[r] == Double.NEGATIVE_INFINITY) continue;
                double sc = normalised(score[r], hist[r].length);
                boolean fin = finished[r];
                if (pick < 0 || (fin && !pickFinished) || (fin == pickFinished && sc > pickScore)) {
                    pick = r;
                    pickScore = sc;
                    pickFinished = fin;
                }
            }
            int[] h = hist[pick];
            boolean endsWithEnd = h.length > 0 && h[h.length - 1] == endToken && finished[pick];
            seqs.add(endsWithEnd ? Arrays.copyOf(h, h.length - 1) : h);
            done[item] = pickFinished;
            logProb[item] = score[pick];
            best[item] = pickScore;
            if (attention != null) attention.add(att[pick]);
        }
        return new Decoded(seqs, done, logProb, best, attention);
    }
}
