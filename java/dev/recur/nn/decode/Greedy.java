package dev.recur.nn.decode;

/**
 * Greedy decoding: at every step each row takes its most probable token (the lowest id on ties), until it
 * produces the end token or {@code maxLength} tokens.
 */
public final class Greedy {
    private Greedy() {}

    public static Decoded decode(StepModel model, int startToken, int endToken, int maxLength) {
        return Sampler.run(model, Sampler.same(model, startToken), endToken, maxLength, null);
    }

    /** With a start token per batch item (e.g. the last token of each prompt of a language model). */
    public static Decoded decode(StepModel model, int[] startTokens, int endToken, int maxLength) {
        return Sampler.run(model, startTokens, endToken, maxLength, null);
    }
}
