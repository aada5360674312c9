package dev.recur.reliability;

import dev.recur.backend.Backend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.lm.LanguageModel;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint whose parameter is stored with an integer dtype (I32 where F32/F64 is expected) is rejected when
 * loading weights, with a message naming the file, the parameter and the dtype, and nothing is half-loaded.
 * (Truncated, garbled and oversized-header files are covered by SafeTensorsTest and the corruption property.)
 */
class CheckpointDtypeTest {
    @TempDir
    Path dir;

    @Test
    void anIntegerParameterIsRejectedByNameAndNothingIsLoaded() throws Exception {
        RnnConfig rnn = RnnConfig.builder(CellType.LSTM, 4, 5).build();
        try (Backend be = ReferenceBackend.PROVIDER.open(); LanguageModel lm = LanguageModel.create(11, 4, rnn, 0, be, 1)) {
            Path good = dir.resolve("good.safetensors");
            lm.save(good);
            SafeTensors st = SafeTensors.read(good);
            String victim = st.tensors().keySet().stream().filter(k -> k.contains("weight_hh")).findFirst().orElseThrow();
            SafeTensors.Writer w = SafeTensors.writer();
            for (Map.Entry<String, Tensor> e : st.tensors().entrySet()) {
                Tensor v = e.getValue();
                if (e.getKey().equals(victim)) {
                    Tensor ints = Tensor.zeros(v.shape());
                    for (int i = 0; i < ints.size(); i++) ints.data()[i] = i % 3;
                    w.put(e.getKey(), ints, DType.I32);
                } else {
                    w.put(e.getKey(), v, st.dtype(e.getKey()));
                }
            }
            st.metadata().forEach(w::metadata);
            Path bad = dir.resolve("bad.safetensors");
            w.save(bad);

            Map<String, Tensor> before = lm.parameters().snapshot();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> lm.load(bad));
            assertTrue(e.getMessage().contains(bad.toString()) && e.getMessage().contains("'" + victim + "'")
                    && e.getMessage().contains("dtype I32") && e.getMessage().contains("F32 or F64"), e.getMessage());
            for (Map.Entry<String, Tensor> p : before.entrySet()) {
                Runs.assertBits("after the rejected load", p.getKey(), p.getValue(), lm.parameters().value(p.getKey()));
            }
            IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> LanguageModel.open(bad, be));
            assertTrue(e2.getMessage().contains("dtype I32"), e2.getMessage());
            // The untouched file still loads.
            lm.load(good);
            try (LanguageModel reopened = LanguageModel.open(good, be)) {
                assertEquals(lm.parameters().names(), reopened.parameters().names());
            }
        }
    }
}
