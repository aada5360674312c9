package dev.recur.schedule;

import dev.recur.backend.DeviceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.device.DeviceRows;
import dev.recur.device.DeviceTestSupport;
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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The schedule's memory behaviour on every device backend: what a training trace saves (and that it is
 * released on close), that the workspace is reused across calls of the same size, and that backward refuses a
 * trace that is closed or belongs to another network.
 */
class ScheduledRnnTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    static Tensor x(int t, int b, int i) {
        return DeviceTestSupport.random(new SplittableRandom(t * 100 + b), 1, t, b, i);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void traceSavesGatesStatesAndInputsAndFreesThemOnClose(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        int T = 7, B = 3, I = 4, H = 5;
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, I, H).bidirectional(true).build();
        try (Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 1))) {
            long before = be.memoryInUse();
            RnnOutput out = rnn.forwardTraining(RnnInput.of(x(T, B, I)), 5);
            long saved = out.trace().savedBytes();
            // lengths, h0, c0, x, then per layer y [T,B,D,H], gates [T,B,D,4H], c [T,B,D,H] (float32/int32).
            long D = 2;
            long expected = 4 * (B + D * B * H * 2 + (long) T * B * I + T * B * D * H * (1 + 4 + 1));
            assertEquals(expected, saved, "bytes saved for backward");
            assertTrue(be.memoryInUse() - before >= saved, "the trace's buffers are device memory");
            long withTrace = be.memoryInUse();
            out.close();
            assertEquals(withTrace - saved, be.memoryInUse(), "closing the trace frees exactly what it saved");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> rnn.backward(out, null, null, null));
            assertTrue(e.getMessage().contains("trace"), e.getMessage());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void inferenceSavesNothingAndReusesTheWorkspace(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        RnnConfig cfg = RnnConfig.builder(CellType.GRU, 4, 6).layers(2).build();
        try (Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 2))) {
            try (RnnOutput out = rnn.forward(RnnInput.of(x(6, 2, 4)))) {
                assertEquals(null, out.trace());
            }
            long afterFirst = be.memoryInUse();
            for (int i = 0; i < 5; i++) {
                try (RnnOutput out = rnn.forward(RnnInput.of(x(6, 2, 4)))) {
                    assertEquals(afterFirst, be.memoryInUse(), "call " + i + " of the same size allocates nothing new");
                }
            }
            try (RnnOutput out = rnn.forward(RnnInput.of(x(3, 2, 4)))) {
                assertEquals(afterFirst, be.memoryInUse(), "a smaller call fits in the workspace");
            }
            try (RnnOutput out = rnn.forward(RnnInput.of(x(12, 2, 4)))) {
                assertTrue(be.memoryInUse() > afterFirst, "a longer sequence grows the workspace");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void backwardRefusesATraceOfAnotherNetwork(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        RnnConfig cfg = RnnConfig.builder(CellType.RNN_TANH, 3, 4).build();
        try (Rnn a = Rnn.create(cfg, be, RnnWeights.init(cfg, 1)); Rnn b = Rnn.create(cfg, be, RnnWeights.init(cfg, 2));
             RnnOutput out = a.forwardTraining(RnnInput.of(x(4, 2, 3)), 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.backward(out, null, null, null));
            assertTrue(e.getMessage().contains("trace"), e.getMessage());
        }
    }
}
