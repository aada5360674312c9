package dev.recur.parity;

import dev.recur.backend.Backend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One PyTorch parity case written by {@code tests/fixtures/make_fixtures.py}: PyTorch's weights, inputs and
 * upstream gradients, and PyTorch's float64 results ({@code y, h_n, c_n, dx, dh0, dc0, d<param>}).
 *
 * @param dir      the case folder (holding weights, inputs and expected {@code .safetensors})
 * @param inputs   x, and as present h0, c0, lengths, dy, dhn, dcn
 * @param expected PyTorch's results by name
 */
public record ParityCase(String name, Path dir, RnnConfig config, RnnWeights weights, SafeTensors inputs,
                         SafeTensors expected) {

    /** The case names, from {@code fixtures/parity/cases.txt}. */
    public static List<String> names() {
        try (InputStream in = ParityCase.class.getClassLoader().getResourceAsStream("fixtures/parity/cases.txt")) {
            if (in == null) throw new IllegalStateException("fixtures/parity/cases.txt is not on the test classpath");
            List<String> names = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank()) names.add(line.strip());
            }
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Path caseDir(String name) {
        URL url = ParityCase.class.getClassLoader().getResource("fixtures/parity/" + name + "/expected.safetensors");
        if (url == null) throw new IllegalStateException("parity case '" + name + "' is not on the test classpath");
        try {
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static ParityCase load(String name) throws IOException {
        Path dir = caseDir(name);
        SafeTensors expected = SafeTensors.read(dir.resolve("expected.safetensors"));
        Map<String, String> m = expected.metadata();
        RnnConfig config = RnnConfig.builder(CellType.parse(m.get("cell")), Integer.parseInt(m.get("input_size")),
                        Integer.parseInt(m.get("hidden_size")))
                .layers(Integer.parseInt(m.get("num_layers")))
                .bidirectional(Boolean.parseBoolean(m.get("bidirectional")))
                .projSize(Integer.parseInt(m.get("proj_size")))
                .build();
        RnnWeights weights = RnnWeights.of(config, SafeTensors.load(dir.resolve("weights.safetensors")));
        SafeTensors inputs = SafeTensors.read(dir.resolve("inputs.safetensors"));
        return new ParityCase(name, dir, config, weights, inputs, expected);
    }

    /** An input by name, or null when the case leaves it out (zeros). */
    public Tensor input(String name) {
        return inputs.tensors().get(name);
    }

    public int[] lengths() {
        Tensor l = input("lengths");
        if (l == null) return null;
        DType d = inputs.dtype("lengths");
        if (!d.isInteger()) throw new IllegalStateException(name + ": lengths stored as " + d);
        return Arrays.stream(l.data()).mapToInt(v -> (int) v).toArray();
    }

    public RnnInput rnnInput() {
        return new RnnInput(input("x"), input("h0"), input("c0"), lengths());
    }

    /**
     * Runs this case on {@code backend} as PyTorch ran it (training forward, backward with the fixture's output
     * gradients, every weight gradient, and an inference forward) and returns every result that is off by more
     * than {@code tol}, or whose name the fixture does not hold (empty: a match). What {@code PyTorchParityTest}
     * and the GPU run ({@code bench/gpu}) both check.
     */
    public List<String> check(Backend backend, double tol) {
        Map<String, Tensor> got = new LinkedHashMap<>();
        Tensor inferenceY;
        try (Rnn rnn = Rnn.create(config, backend, weights)) {
            try (RnnOutput inference = rnn.forward(rnnInput())) {
                inferenceY = inference.y();
            }
            try (RnnOutput out = rnn.forwardTraining(rnnInput(), 0L)) {
                got.put("y", out.y());
                got.put("h_n", out.hN());
                if (config.cell() == CellType.LSTM) got.put("c_n", out.cN());
                RnnGradients g = rnn.backward(out, input("dy"), input("dhn"), input("dcn"));
                got.put("dx", g.dx());
                got.put("dh0", g.dh0());
                if (config.cell() == CellType.LSTM) got.put("dc0", g.dc0());
                g.weights().forEach((k, v) -> got.put("d" + k, v));
            }
        }
        List<String> failures = new ArrayList<>(mismatches(got, tol));
        String inf = compare("y (inference mode)", expected().tensor("y"), inferenceY, tol);
        if (inf != null) failures.add(inf);
        if (!expected().tensors().keySet().equals(got.keySet())) {
            failures.add("result names: expected " + expected().tensors().keySet() + ", got " + got.keySet());
        }
        return failures;
    }

    /**
     * Compares every tensor PyTorch computed with {@code got} (names as in the expected file) under
     * max|got−ref| ≤ tol·max(1, max|ref|); returns one line per failing tensor (empty when all match),
     * naming the tensor, the worst index, expected and actual values. A tensor missing from {@code got} fails.
     */
    public List<String> mismatches(Map<String, Tensor> got, double tol) {
        List<String> failures = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : expected.tensors().entrySet()) {
            String failure = compare(e.getKey(), e.getValue(), got.get(e.getKey()), tol);
            if (failure != null) failures.add(failure);
        }
        return failures;
    }

    /** One tensor under the relative rule; null when it matches, else a message. */
    public static String compare(String tensor, Tensor ref, Tensor got, double tol) {
        if (got == null) return tensor + ": missing from the results";
        if (!Arrays.equals(ref.shape(), got.shape())) {
            return tensor + ": expected shape " + Arrays.toString(ref.shape()) + ", got " + Arrays.toString(got.shape());
        }
        double bound = tol * Math.max(1.0, ref.maxAbs());
        double worst = -1;
        int worstAt = -1;
        double[] r = ref.data(), g = got.data();
        for (int i = 0; i < r.length; i++) {
            double d = Math.abs(g[i] - r[i]);
            // NaN never passes: !(d <= bound) catches it where d > bound would not.
            if (!(d <= bound) && (worstAt < 0 || !(d <= worst))) {
                worst = d;
                worstAt = i;
            }
        }
        if (worstAt < 0) return null;
        return tensor + Arrays.toString(unflatten(worstAt, ref.shape())) + ": expected " + r[worstAt] + ", got " + g[worstAt]
                + " (|diff| " + worst + " > " + bound + " = " + tol + "·max(1, max|ref| " + ref.maxAbs() + "))";
    }

    private static int[] unflatten(int flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = flat % shape[i];
            flat /= shape[i];
        }
        return idx;
    }
}
