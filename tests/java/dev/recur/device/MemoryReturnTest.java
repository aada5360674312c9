package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Creates and closes a network with device buffers 10,000 times (a training forward and backward every
 * 500th time, an unclosed trace every 1000th, which closing the network must free) and checks that the
 * backend's memory in use returns to its starting value.
 */
class MemoryReturnTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void memoryInUseReturnsToStartAfter10000Networks(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 3, 4).bidirectional(true).layers(2).build();
        RnnWeights w = RnnWeights.init(cfg, 1);
        SplittableRandom r = new SplittableRandom(3);
        Tensor x = DeviceTestSupport.random(r, 1, 3, 2, 3);
        long start = be.memoryInUse();
        long peak = start;
        for (int i = 0; i < 10_000; i++) {
            try (Rnn rnn = Rnn.create(cfg, be, w)) {
                peak = Math.max(peak, be.memoryInUse());
                if (i % 500 == 0) {
                    RnnOutput out = rnn.forwardTraining(RnnInput.of(x), i);
                    assertTrue(out.trace().savedBytes() > 0);
                    rnn.backward(out, null, null, null);
                    if (i % 1000 != 0) out.close();
                }
            }
            if (be.memoryInUse() != start) {
                throw new AssertionError("after network " + i + ": memory in use " + be.memoryInUse() + " bytes, expected "
                        + start);
            }
        }
        assertTrue(peak > start, "the networks held device memory while open");
        assertEquals(start, be.memoryInUse());
    }
}
