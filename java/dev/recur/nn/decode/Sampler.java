package dev.recur.nn.decode;

import dev.recur.nn.layers.Activations;
import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Ancestral sampling: each row draws its next token from {@code softmax(logits / temperature)} with a seeded
 * generator, until the end token or {@code maxLength} tokens. Lower temperatures sharpen the distribution
 * (towards greedy), higher ones flatten it. The same seed gives the same samples.
 */
public final class Sampler {
    private final double temperature;
    private final SplittableRandom random;

    public Sampler(double temperature, long seed) {
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature: expected a finite value > 0, got " + temperature);
        }
        this.temperature = temperature;
        this.random = new SplittableRandom(seed);
    }

    public Decoded decode(StepModel model, int startToken, int endToken, int maxLength) {
        return run(model, same(model, startToken), endToken, maxLength, this);
    }

    /**
     * With a start token per batch item (e.g. the last token of each prompt of a language model); an
     * {@code endToken} of -1 never ends, so exactly {@code maxLength} tokens are drawn.
     */
    public Decoded decode(StepModel model, int[] startTokens, int endToken, int maxLength) {
        return run(model, startTokens, endToken, maxLength, this);
    }

    static int[] same(StepModel model, int token) {
        if (model == null) throw new IllegalArgumentException("model: must not be null");
        int[] t = new int[model.batchSize()];
        Arrays.fill(t, token);
        return t;
    }

    private int draw(double[] logits, int off, int v) {
        double m = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < v; j++) m = Math.max(m, logits[off + j] / temperature);
        double[] p = new double[v];
        double s = 0;
        for (int j = 0; j < v; j++) {
            p[j] = Math.exp(logits[off + j] / temperature - m);
            s += p[j];
        }
        double u = random.nextDouble() * s;
        for (int j = 0; j < v; j++) {
            u -= p[j];
            if (u < 0) return j;
        }
        return v - 1;
    }

    /** Greedy when {@code sampler} is null. */
    static Decoded run(StepModel model, int[] startTokens, int endToken, int maxLength, Sampler sampler) {
        if (model == null) throw new IllegalArgumentException("model: must not be null");
        int v = model.vocabSize();
        int b = model.batchSize();
        checkStarts(startTokens, b, v);
        if (endToken != -1) checkToken("endToken", endToken, v);
        if (maxLength <= 0) throw new IllegalArgumentException("maxLength: expected > 0, got " + maxLength);
        DecoderState state = model.start(1);
        int[] tokens = startTokens.clone();
        boolean[] done = new boolean[b];
        double[] logProb = new double[b];
        List<List<Integer>> out = new ArrayList<>();
        List<List<double[]>> att = new ArrayList<>();
        for (int i = 0; i < b; i++) {
            out.add(new ArrayList<>());
            att.add(new ArrayList<>());
        }
        boolean hasAttention = true;
        for (int step = 0; step < maxLength; step++) {
            StepModel.Step s = model.step(tokens, state);
            Tensor logp = Activations.logSoftmax(s.logits());
            double[] lp = logp.data(), lg = s.logits().data();
            hasAttention &= s.attention() != null;
            int tw = s.attention() == null ? 0 : s.attention().dim(1);
            boolean all = true;
            for (int r = 0; r < b; r++) {
                if (done[r]) continue;
                int next;
                if (sampler == null) {
                    next = 0;
                    for (int j = 1; j < v; j++) if (lg[r * v + j] > lg[r * v + next]) next = j;
                } else {
                    next = sampler.draw(lg, r * v, v);
                }
                logProb[r] += lp[r * v + next];
                if (s.attention() != null) att.get(r).add(Arrays.copyOfRange(s.attention().data(), r * tw, (r + 1) * tw));
                if (next == endToken) {
                    done[r] = true;
                } else {
                    out.get(r).add(next);
                    all = false;
                }
                tokens[r] = next;
            }
            state = s.next();
            if (all) break;
        }
        List<int[]> seqs = new ArrayList<>();
        List<double[][]> attention = hasAttention ? new ArrayList<>() : null;
        for (int r = 0; r < b; r++) {
            seqs.add(out.get(r).stream().mapToInt(Integer::intValue).toArray());
            if (attention != null) attention.add(att.get(r).toArray(new double[0][]));
        }
        return new Decoded(seqs, done, logProb, logProb.clone(), attention);
    }

    static void checkStarts(int[] startTokens, int b, int v) {
        if (startTokens == null || startTokens.length != b) {
            throw new IllegalArgumentException("startTokens: expected " + b + " entries (one per batch item), got "
                    + (startTokens == null ? "null" : startTokens.length));
        }
        for (int i = 0; i < b; i++) {
            if (startTokens[i] < 0 || startTokens[i] >= v) {
                throw new IllegalArgumentException("startTokens: entry " + i + " must be in [0, " + v + "), got " + startTokens[i]);
            }
        }
    }

    static void checkToken(String name, int token, int v) {
        if (token < 0 || token >= v) throw new IllegalArgumentException(name + ": expected in [0, " + v + "), got " + token);
    }
}
