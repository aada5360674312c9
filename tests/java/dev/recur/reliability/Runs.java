package dev.recur.reliability;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** Backend rows and bit-exact comparison of whole forward+backward results for the reliability suites. */
final class Runs {
    /** Every backend the suites try; one not registered or not available here is skipped with the reason. */
    static final List<String> BACKENDS = List.of("reference", "opencl", "cpu", "cuda");

    private Runs() {}

    /** A fresh backend of that name (the caller closes it), or a skip naming why there is none. */
    static Backend open(String name) {
        for (BackendProvider p : Backends.providers()) {
            if (!p.name().equals(name)) continue;
            BackendProvider.Availability a = p.probe();
            Assumptions.assumeTrue(a.available(), () -> "backend " + name + " unavailable: " + a.detail());
            return p.open();
        }
        Assumptions.abort("backend " + name + " is not registered in Backends.providers()");
        throw new AssertionError("unreachable");
    }

    /** Every output and gradient of one training step, by name, in a fixed order. */
    record Result(Map<String, Tensor> tensors) {
        void assertBitIdentical(String what, Result expected) {
            if (!expected.tensors.keySet().equals(tensors.keySet())) {
                throw new AssertionError(what + ": tensors " + tensors.keySet() + ", expected " + expected.tensors.keySet());
            }
            for (Map.Entry<String, Tensor> e : expected.tensors.entrySet()) {
                assertBits(what, e.getKey(), e.getValue(), tensors.get(e.getKey()));
            }
        }
    }

    static void assertBits(String what, String name, Tensor expected, Tensor actual) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            throw new AssertionError(what + ": " + name + " shape " + Arrays.toString(actual.shape()) + ", expected "
                    + Arrays.toString(expected.shape()));
        }
        double[] e = expected.data(), a = actual.data();
        for (int i = 0; i < e.length; i++) {
            if (Double.doubleToRawLongBits(e[i]) != Double.doubleToRawLongBits(a[i])) {
                throw new AssertionError(what + ": " + name + " at flat index " + i + ": expected " + e[i] + ", got " + a[i]
                        + " (not bit-identical)");
            }
        }
    }

    /** One training forward (dropout from {@code seed}) and its backward with upstream gradient {@code dy}. */
    static Result step(Rnn rnn, Tensor x, int[] lengths, Tensor dy, long seed) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        try (RnnOutput out = rnn.forwardTraining(RnnInput.of(x).withLengths(lengths), seed)) {
            m.put("y", out.y());
            m.put("h_n", out.hN());
            if (out.cN() != null) m.put("c_n", out.cN());
            RnnGradients g = rnn.backward(out, dy, null, null);
            m.put("dx", g.dx());
            m.put("dh0", g.dh0());
            if (g.dc0() != null) m.put("dc0", g.dc0());
            g.weights().forEach((k, v) -> m.put("d" + k, v));
        }
        return new Result(m);
    }

    static Tensor random(SplittableRandom r, int... shape) {
        Tensor t = Tensor.zeros(shape);
        double[] d = t.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) r.nextDouble(-1, 1);
        return t;
    }

    /** The inputs of case {@code i}: its own x, lengths and dy. */
    record Case(Tensor x, int[] lengths, Tensor dy, long seed) {
        static Case of(RnnConfig cfg, int t, int b, int i) {
            SplittableRandom r = new SplittableRandom(1000 + i);
            Tensor x = random(r, t, b, cfg.inputSize());
            int[] len = new int[b];
            for (int j = 0; j < b; j++) len[j] = 1 + r.nextInt(t);
            len[0] = t;
            Tensor dy = random(r, t, b, cfg.outputWidth());
            return new Case(x, len, dy, 77 + i);
        }

        Result run(Rnn rnn) {
            return step(rnn, x, lengths, dy, seed);
        }
    }
}
