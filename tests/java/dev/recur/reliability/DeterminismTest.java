package dev.recur.reliability;

import dev.recur.backend.Backend;
import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The same inputs, weights and seed give bit-identical outputs and gradients on the same backend: repeated on
 * one network, on a second network, and on a second instance of the backend. A different dropout seed must
 * change the result (so the comparison can fail).
 */
class DeterminismTest {
    static Stream<String> backends() {
        return Runs.BACKENDS.stream();
    }

    static final RnnConfig LSTM = RnnConfig.builder(CellType.LSTM, 7, 9).layers(2).bidirectional(true)
            .inputDropout(0.25).recurrentDropout(0.2).dropout(0.3).build();
    static final RnnConfig GRU = RnnConfig.builder(CellType.GRU, 5, 6).layers(2).gruReset(GruReset.BEFORE)
            .layerNorm(true).recurrentDropout(0.3).build();

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void sameInputsWeightsAndSeedGiveBitIdenticalResults(String name) {
        for (RnnConfig cfg : new RnnConfig[] {LSTM, GRU}) {
            String what = name + " " + cfg.cell();
            RnnWeights w = RnnWeights.init(cfg, 11);
            Runs.Case c = Runs.Case.of(cfg, 6, 4, 3);
            Runs.Result first;
            try (Backend be = Runs.open(name)) {
                try (Rnn rnn = Rnn.create(cfg, be, w)) {
                    first = c.run(rnn);
                    // Another case in between leaves workspaces holding other data.
                    Runs.Case.of(cfg, 3, 2, 9).run(rnn);
                    c.run(rnn).assertBitIdentical(what + ", same network again", first);
                    Runs.Result otherSeed = new Runs.Case(c.x(), c.lengths(), c.dy(), c.seed() + 1).run(rnn);
                    assertFalse(Arrays.equals(first.tensors().get("y").data(), otherSeed.tensors().get("y").data()),
                            what + ": another dropout seed gave the same y");
                }
                try (Rnn second = Rnn.create(cfg, be, w)) {
                    c.run(second).assertBitIdentical(what + ", second network", first);
                }
            }
            try (Backend be2 = Runs.open(name); Rnn third = Rnn.create(cfg, be2, w)) {
                c.run(third).assertBitIdentical(what + ", second backend instance", first);
            }
        }
    }
}
