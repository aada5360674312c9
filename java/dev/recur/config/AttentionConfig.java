package dev.recur.config;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shape of an attention layer: the score function, the decoder state width {@code Hd}, the encoder
 * state width {@code He} and, for {@link AttentionScore#ADDITIVE} only, the width {@code A} of the hidden
 * layer inside the score ({@code 0} for the others). Validated on construction.
 *
 * @param score         the score function
 * @param decoderSize   Hd, the width of a decoder state
 * @param encoderSize   He, the width of an encoder state (and of the context)
 * @param attentionSize A for additive scores, 0 otherwise
 */
public record AttentionConfig(AttentionScore score, int decoderSize, int encoderSize, int attentionSize) {
    public AttentionConfig {
        if (score == null) throw new IllegalArgumentException("score: must not be null");
        if (decoderSize <= 0) throw new IllegalArgumentException("decoderSize: expected > 0, got " + decoderSize);
        if (encoderSize <= 0) throw new IllegalArgumentException("encoderSize: expected > 0, got " + encoderSize);
        if ((score == AttentionScore.DOT || score == AttentionScore.SCALED) && decoderSize != encoderSize) {
            throw new IllegalArgumentException("decoderSize: " + score.label() + " scores need decoderSize == encoderSize ("
                    + encoderSize + "), got " + decoderSize);
        }
        if (score == AttentionScore.ADDITIVE) {
            if (attentionSize <= 0) {
                throw new IllegalArgumentException("attentionSize: expected > 0 for additive scores, got " + attentionSize);
            }
        } else if (attentionSize != 0) {
            throw new IllegalArgumentException("attentionSize: only additive scores have one, expected 0 for "
                    + score.label() + ", got " + attentionSize);
        }
    }

    /** Luong dot scores over states of width {@code hidden}. */
    public static AttentionConfig dot(int hidden) {
        return new AttentionConfig(AttentionScore.DOT, hidden, hidden, 0);
    }

    /** Dot scores divided by sqrt(hidden). */
    public static AttentionConfig scaled(int hidden) {
        return new AttentionConfig(AttentionScore.SCALED, hidden, hidden, 0);
    }

    /** Luong general scores {@code d · W_a · e} with {@code W_a [decoderSize, encoderSize]}. */
    public static AttentionConfig general(int decoderSize, int encoderSize) {
        return new AttentionConfig(AttentionScore.GENERAL, decoderSize, encoderSize, 0);
    }

    /** Bahdanau scores {@code v · tanh(W1 e + W2 d)} with a hidden layer of {@code attentionSize}. */
    public static AttentionConfig additive(int decoderSize, int encoderSize, int attentionSize) {
        return new AttentionConfig(AttentionScore.ADDITIVE, decoderSize, encoderSize, attentionSize);
    }

    /** Each parameter's name and shape, in {@link AttentionScore#weightNames()} order. */
    public Map<String, int[]> weightShapes() {
        Map<String, int[]> m = new LinkedHashMap<>();
        switch (score) {
            case GENERAL -> m.put("W_a", new int[] {decoderSize, encoderSize});
            case ADDITIVE -> {
                m.put("W1", new int[] {attentionSize, encoderSize});
                m.put("W2", new int[] {attentionSize, decoderSize});
                m.put("v", new int[] {attentionSize});
            }
            default -> { }
        }
        return m;
    }
}
