package dev.recur.nn.decode;

import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.function.BiFunction;

/**
 * A hand-built {@link StepModel} whose next-token probabilities are any function of (batch item, prefix):
 * the state is each row's item and token prefix, so decoders can be checked against known probabilities.
 * Counts the step calls and the rows of each call to check that decoding is batched.
 */
final class PrefixModel implements StepModel {
    private final int batch;
    private final int vocab;
    private final BiFunction<Integer, int[], double[]> probs;
    int calls;
    int maxRowsPerCall;

    /** @param probs (item, prefix after the start token) → probabilities over the vocabulary (0 allowed) */
    PrefixModel(int batch, int vocab, BiFunction<Integer, int[], double[]> probs) {
        this.batch = batch;
        this.vocab = vocab;
        this.probs = probs;
    }

    record State(int[] item, int[][] prefix, boolean started) implements DecoderState {
        @Override
        public int rows() {
            return item.length;
        }

        @Override
        public DecoderState select(int[] rows) {
            int[] it = new int[rows.length];
            int[][] p = new int[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                it[i] = item[rows[i]];
                p[i] = prefix[rows[i]];
            }
            return new State(it, p, started);
        }
    }

    @Override
    public int batchSize() {
        return batch;
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public DecoderState start(int rowsPerItem) {
        int n = batch * rowsPerItem;
        int[] it = new int[n];
        int[][] p = new int[n][0];
        for (int r = 0; r < n; r++) it[r] = r / rowsPerItem;
        return new State(it, p, false);
    }

    @Override
    public Step step(int[] tokens, DecoderState state) {
        State s = (State) state;
        calls++;
        maxRowsPerCall = Math.max(maxRowsPerCall, tokens.length);
        int n = s.rows();
        int[][] np = new int[n][];
        Tensor logits = Tensor.zeros(n, vocab);
        for (int r = 0; r < n; r++) {
            // The first call consumes the start token, which is not part of the prefix.
            np[r] = s.started ? Arrays.copyOf(s.prefix[r], s.prefix[r].length + 1) : s.prefix[r];
            if (s.started) np[r][s.prefix[r].length] = tokens[r];
            double[] p = probs.apply(s.item[r], np[r]);
            for (int j = 0; j < vocab; j++) logits.data()[r * vocab + j] = Math.log(p[j]);
        }
        return new Step(logits, new State(s.item, np, true), null);
    }
}
