package dev.recur.nn.attention;

import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionWeights;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Every bad argument is refused before anything runs, with a message naming the argument, expected and actual. */
class AttentionValidationTest {
    private static void rejects(String message, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertEquals(message, e.getMessage());
    }

    @Test
    void config() {
        rejects("decoderSize: dot scores need decoderSize == encoderSize (5), got 4",
                () -> new AttentionConfig(AttentionScore.DOT, 4, 5, 0));
        rejects("encoderSize: expected > 0, got 0", () -> AttentionConfig.general(3, 0));
        rejects("attentionSize: expected > 0 for additive scores, got 0", () -> AttentionConfig.additive(3, 4, 0));
        rejects("attentionSize: only additive scores have one, expected 0 for general, got 2",
                () -> new AttentionConfig(AttentionScore.GENERAL, 3, 4, 2));
        rejects("score: must not be null", () -> new AttentionConfig(null, 3, 3, 0));
        rejects("score: expected one of dot, scaled, general, additive, got 'luong'", () -> AttentionScore.parse("luong"));
        assertEquals(AttentionScore.ADDITIVE, AttentionScore.parse(" Additive "));
    }

    @Test
    void weights() {
        AttentionConfig cfg = AttentionConfig.additive(3, 4, 5);
        rejects("weights: W1 expected shape [5, 4], got [4, 5]", () -> AttentionWeights.of(cfg,
                Map.of("W1", Tensor.zeros(4, 5), "W2", Tensor.zeros(5, 3), "v", Tensor.zeros(5))));
        rejects("weights: v of shape [5] is missing for additive attention", () -> AttentionWeights.of(cfg,
                Map.of("W1", Tensor.zeros(5, 4), "W2", Tensor.zeros(5, 3))));
        rejects("weights: unexpected tensor 'W_a' for additive attention, expected exactly [W1, W2, v]",
                () -> AttentionWeights.of(cfg, Map.of("W_a", Tensor.zeros(3, 4))));
        AttentionWeights w = AttentionWeights.init(cfg, 3);
        rejects("name: expected one of [W1, W2, v] for additive attention, got 'W_a'", () -> w.get("W_a"));
        // Seeded: the same seed gives the same numbers, within U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        assertEquals(w.get("W2").get(4, 2), AttentionWeights.init(cfg, 3).get("W2").get(4, 2));
        for (double d : w.get("W2").data()) assertEquals(true, Math.abs(d) <= 1 / Math.sqrt(3), "W2 value " + d);
        for (double d : w.get("v").data()) assertEquals(true, Math.abs(d) <= 1 / Math.sqrt(5), "v value " + d);
        assertEquals(0, AttentionWeights.init(AttentionConfig.dot(4), 1).asMap().size());
    }

    @Test
    void inputs() {
        AttentionConfig cfg = AttentionConfig.general(3, 4);
        Attention att = Attention.create(cfg, new ReferenceBackend(), AttentionWeights.init(cfg, 1));
        Tensor dec = Tensor.zeros(2, 5, 3), enc = Tensor.zeros(6, 5, 4);
        rejects("dec: expected shape [U > 0, B > 0, 3], got [2, 5, 4]", () -> att.forward(Tensor.zeros(2, 5, 4), enc, null));
        rejects("enc: expected shape [T > 0, B, 4], got [6, 5]", () -> att.forward(dec, Tensor.zeros(6, 5), null));
        rejects("enc: expected batch 5 (from dec) in dimension 1, got shape [6, 4, 4]", () -> att.forward(dec, Tensor.zeros(6, 4, 4), null));
        rejects("mask: expected shape [5, 6], got [6, 5]", () -> att.forward(dec, enc, Tensor.zeros(6, 5)));
        Tensor mask = Tensor.full(1.0, 5, 6);
        mask.set(0.5, 3, 2);
        rejects("mask: expected 0 or 1 at [3, 2], got 0.5", () -> att.forward(dec, enc, mask));
        rejects("dcontext: expected shape [2, 5, 4], got [2, 5, 3]", () -> att.backward(dec, enc, null, Tensor.zeros(2, 5, 3)));
        rejects("dec: required tensor [U, B, 3] is missing", () -> att.forward(null, enc, null));
        rejects("weights: W_a expected shape [3, 4], got [4, 3]",
                () -> att.setWeights(AttentionWeights.of(AttentionConfig.general(4, 3), Map.of("W_a", Tensor.zeros(4, 3)))));
        rejects("lengths: entry 1 must be in [0, 6], got 7", () -> Attention.maskFromLengths(new int[] {6, 7}, 6));
        att.close();
        att.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> att.forward(dec, enc, null));
        assertEquals("Attention: used after close()", e.getMessage());
    }
}
