package dev.recur.nn.seq2seq;

import java.util.List;

/**
 * A padded, time-major training batch.
 *
 * @param source        {@code [T * B]} source ids, entry {@code t*B + b}, padded with the padding id
 * @param sourceSteps   T, the longest source
 * @param batch         B
 * @param sourceLengths {@code [B]} each source's length (>= 1)
 * @param target        {@code [U * B]} target ids followed by the end token, padded; what the decoder must
 *                      predict at step {@code u}
 * @param targetSteps   U, the longest target plus one (the end token)
 */
public record Seq2SeqBatch(int[] source, int sourceSteps, int batch, int[] sourceLengths, int[] target, int targetSteps) {
    public Seq2SeqBatch {
        if (batch <= 0) throw new IllegalArgumentException("batch: expected > 0, got " + batch);
        if (sourceSteps <= 0) throw new IllegalArgumentException("sourceSteps: expected > 0, got " + sourceSteps);
        if (targetSteps <= 0) throw new IllegalArgumentException("targetSteps: expected > 0, got " + targetSteps);
        if (source == null || source.length != sourceSteps * batch) {
            throw new IllegalArgumentException("source: expected " + sourceSteps * batch + " ids, got " + (source == null ? "null" : source.length));
        }
        if (target == null || target.length != targetSteps * batch) {
            throw new IllegalArgumentException("target: expected " + targetSteps * batch + " ids, got " + (target == null ? "null" : target.length));
        }
        if (sourceLengths == null || sourceLengths.length != batch) {
            throw new IllegalArgumentException("sourceLengths: expected " + batch + " entries, got "
                    + (sourceLengths == null ? "null" : sourceLengths.length));
        }
        for (int b = 0; b < batch; b++) {
            if (sourceLengths[b] < 1 || sourceLengths[b] > sourceSteps) {
                throw new IllegalArgumentException("sourceLengths: entry " + b + " must be in [1, " + sourceSteps + "], got " + sourceLengths[b]);
            }
        }
    }

    /**
     * Pads {@code sources} and {@code targets} (the latter without end tokens; one is appended to each).
     * Sources must be non-empty.
     */
    public static Seq2SeqBatch of(List<int[]> sources, List<int[]> targets, int padId, int eosId) {
        if (sources == null || targets == null) throw new IllegalArgumentException("sources/targets: must not be null");
        if (sources.isEmpty()) throw new IllegalArgumentException("sources: expected at least one sequence, got 0");
        if (sources.size() != targets.size()) {
            throw new IllegalArgumentException("targets: expected " + sources.size() + " sequences (as many as sources), got " + targets.size());
        }
        int b = sources.size(), t = 0, u = 0;
        int[] len = new int[b];
        for (int i = 0; i < b; i++) {
            if (sources.get(i) == null || sources.get(i).length == 0) {
                throw new IllegalArgumentException("sources: sequence " + i + " is empty; every source needs at least one token");
            }
            if (targets.get(i) == null) throw new IllegalArgumentException("targets: sequence " + i + " is null");
            len[i] = sources.get(i).length;
            t = Math.max(t, len[i]);
            u = Math.max(u, targets.get(i).length + 1);
        }
        int[] src = new int[t * b], tgt = new int[u * b];
        java.util.Arrays.fill(src, padId);
        java.util.Arrays.fill(tgt, padId);
        for (int i = 0; i < b; i++) {
            int[] s = sources.get(i), g = targets.get(i);
            for (int j = 0; j < s.length; j++) src[j * b + i] = s[j];
            for (int j = 0; j < g.length; j++) tgt[j * b + i] = g[j];
            tgt[g.length * b + i] = eosId;
        }
        return new Seq2SeqBatch(src, t, b, len, tgt, u);
    }

    /** Target id at step {@code u} of item {@code b}. */
    public int target(int u, int b) {
        return target[u * batch + b];
    }
}
