package dev.recur.nn.layers;

import dev.recur.tensor.Tensor;

import java.util.Arrays;

/**
 * Softmax cross-entropy over the last axis of {@code logits [N, V]} (any leading shape) against integer
 * targets, ignoring positions whose target is the padding id: the loss is the mean of
 * {@code -log softmax(logits)[target]} over the non-padded positions, and its gradient is
 * {@code (softmax - onehot) / count} there and exactly 0 at padded positions. With no non-padded position,
 * the loss is 0 and the gradient all zeros.
 */
public final class SoftmaxCrossEntropy {
    private SoftmaxCrossEntropy() {}

    /**
     * @param loss    mean over counted positions
     * @param dlogits gradient of {@code loss}, same shape as the logits
     * @param count   non-padded positions
     * @param correct counted positions whose argmax equals the target
     */
    public record Result(double loss, Tensor dlogits, int count, int correct) {}

    /** @param paddingId target id that is not counted, or -1 to count every position */
    public static Result compute(Tensor logits, int[] targets, int paddingId) {
        if (logits == null || logits.rank() < 1) throw new IllegalArgumentException("logits: expected a tensor [..., V]");
        int v = logits.dim(logits.rank() - 1);
        int n = logits.size() / Math.max(v, 1);
        if (targets == null || targets.length != n) {
            throw new IllegalArgumentException("targets: expected " + n + " entries (rows of logits " + Arrays.toString(logits.shape())
                    + "), got " + (targets == null ? "null" : targets.length));
        }
        for (int i = 0; i < n; i++) {
            if (targets[i] != paddingId && (targets[i] < 0 || targets[i] >= v)) {
                throw new IllegalArgumentException("targets: entry " + i + " must be in [0, " + v + ") or the padding id "
                        + paddingId + ", got " + targets[i]);
            }
        }
        int count = 0;
        for (int t : targets) if (t != paddingId) count++;
        Tensor logp = Activations.logSoftmax(logits);
        Tensor d = Tensor.zeros(logits.shape());
        double loss = 0;
        int correct = 0;
        double[] lp = logp.data(), dd = d.data(), x = logits.data();
        for (int r = 0; r < n; r++) {
            if (targets[r] == paddingId) continue;
            int o = r * v;
            loss -= lp[o + targets[r]];
            int best = 0;
            for (int j = 1; j < v; j++) if (x[o + j] > x[o + best]) best = j;
            if (best == targets[r]) correct++;
            for (int j = 0; j < v; j++) dd[o + j] = Math.exp(lp[o + j]) / count;
            dd[o + targets[r]] -= 1.0 / count;
        }
        return new Result(count == 0 ? 0 : loss / count, d, count, correct);
    }
}
