package dev.recur.nn.seq2seq;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.device.DeviceRows;
import dev.recur.nn.decode.DecoderState;
import dev.recur.nn.decode.DeviceStepModel;
import dev.recur.nn.decode.StepModel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Seq2Seq#deviceStepModel}: with several rows per source and a reordering of the rows between steps (what
 * beam search does), its logits and attention on the device follow the host {@link StepModel}'s over the same
 * parameters, step after step.
 */
class Seq2SeqDeviceStepModelTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void rowsPerItemAndSelectFollowTheHostStepModel(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        long start = be.memoryInUse();
        try (Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5)) {
            Seq2SeqDeviceTrainingTest.train(m, 10);
            List<int[]> sources = new ArrayList<>();
            SplittableRandom rnd = new SplittableRandom(3);
            for (int i = 0; i < 5; i++) sources.add(rnd.ints(rnd.nextInt(2, 7), 3, Seq2SeqDeviceTrainingTest.V).toArray());
            int k = 3, n = sources.size() * k, v = Seq2SeqDeviceTrainingTest.V;
            StepModel host = m.stepModel(sources);
            DecoderState state = host.start(k);
            try (DeviceStepModel dev = m.deviceStepModel(sources);
                 DeviceTensor tok = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, n);
                 DeviceTensor parents = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, n)) {
                dev.start(k);
                assertEquals(n, dev.rows(), backend + ": rows");
                int[] tokens = new int[n];
                for (int r = 0; r < n; r++) tokens[r] = Seq2SeqDeviceTrainingTest.BOS;
                for (int step = 0; step < 4; step++) {
                    StepModel.Step hs = host.step(tokens, state);
                    be.upload(tokens, 0, tok.buffer(), 0, n);
                    float[] logits = dev.step(tok.buffer()).toFloatArray();
                    float[] att = dev.attention().toFloatArray();
                    double[] hl = hs.logits().data(), ha = hs.attention().data();
                    for (int i = 0; i < hl.length; i++) {
                        assertEquals(hl[i], logits[i], 2e-4 * Math.max(1, Math.abs(hl[i])), backend + ": logit " + i + " at step " + step);
                    }
                    for (int i = 0; i < ha.length; i++) assertEquals(ha[i], att[i], 1e-5, backend + ": attention " + i + " at step " + step);
                    // Reorder the rows within each item (row r takes a random row of its own item) and feed new tokens.
                    int[] par = new int[n];
                    for (int r = 0; r < n; r++) par[r] = (r / k) * k + rnd.nextInt(k);
                    state = hs.next().select(par);
                    be.upload(par, 0, parents.buffer(), 0, n);
                    dev.select(parents.buffer());
                    for (int r = 0; r < n; r++) tokens[r] = rnd.nextInt(3, v);
                }
            }
        }
        assertEquals(start, be.memoryInUse(), backend + ": device memory in use after closing the model");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void stepBeforeStartAndBadWidthsAreRefused(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (Seq2Seq m = Seq2Seq.create(Seq2SeqDeviceTrainingTest.config(), be, 5);
             DeviceStepModel dev = m.deviceStepModel(List.of(new int[] {3, 4}));
             DeviceTensor tok = DeviceTensor.allocate(be, DeviceBuffer.Type.I32, 1)) {
            assertTrue(assertThrows(IllegalStateException.class, () -> dev.step(tok.buffer())).getMessage().contains("start"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> dev.start(0)).getMessage().contains("rowsPerItem"));
        }
    }
}
