package dev.recur.cli;

import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code recur attention} end to end on the PyTorch fixtures of {@code tests/fixtures/attention}. */
class AttentionCommandTest {
    @TempDir
    Path dir;

    static Path caseDir(String name) {
        try {
            return Path.of(AttentionCommandTest.class.getClassLoader()
                    .getResource("fixtures/attention/" + name + "/expected.safetensors").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private List<String> args(String caseName, Path out) {
        Path c = caseDir(caseName);
        String score = caseName.substring(0, caseName.indexOf('_'));
        List<String> a = new ArrayList<>(List.of("attention", "--score", score, "--inputs", c.resolve("inputs.safetensors").toString(),
                "--out", out.toString()));
        if (!score.equals("dot") && !score.equals("scaled")) a.addAll(List.of("--weights", c.resolve("weights.safetensors").toString()));
        return a;
    }

    @ParameterizedTest
    @ValueSource(strings = {"dot_masked", "scaled_odd", "general_hd_lt_he", "additive_masked", "additive_batch1_t1"})
    void backwardOnTheReferenceReproducesPyTorch(String caseName) throws IOException {
        Path out = dir.resolve(caseName + ".safetensors");
        List<String> a = args(caseName, out);
        a.addAll(List.of("--backward", "--backend", "reference", "--dtype", "f64"));
        CliRun r = CliRun.of(a.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        assertEquals("", r.err(), r.toString());
        String names = caseName.startsWith("general") ? ", dW_a" : caseName.startsWith("additive") ? ", dW1, dW2, dv" : "";
        assertEquals("wrote " + out + ": scores, weights, context, dscores, ddec, denc" + names + " (backend reference, F64)",
                r.out().strip(), r.toString());
        SafeTensors expected = SafeTensors.read(caseDir(caseName).resolve("expected.safetensors"));
        SafeTensors got = SafeTensors.read(out);
        assertEquals(expected.tensors().keySet(), got.tensors().keySet(), "result names");
        for (String name : got.tensors().keySet()) {
            assertEquals(DType.F64, got.dtype(name), name + " dtype");
            assertClose(caseName, name, expected.tensor(name), got.tensor(name), 1e-9);
        }
        assertEquals("reference", got.metadata().get("backend"));
        assertEquals(caseName.substring(0, caseName.indexOf('_')), got.metadata().get("score"));
    }

    @Test
    void forwardOnOpenClWritesFloat32WithinTolerance() throws IOException {
        BackendProvider.Availability a = Backends.provider("opencl").probe();
        if (!a.available() && "true".equals(System.getProperty("recur.ci"))) throw new AssertionError("opencl unavailable under recur.ci: " + a.detail());
        assumeTrue(a.available(), "opencl unavailable: " + a.detail());
        Path out = dir.resolve("ocl.safetensors");
        List<String> args = args("additive_large_scores", out);
        args.addAll(List.of("--backend", "opencl"));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        SafeTensors got = SafeTensors.read(out);
        assertEquals(List.of("scores", "weights", "context"), new ArrayList<>(got.tensors().keySet()));
        SafeTensors expected = SafeTensors.read(caseDir("additive_large_scores").resolve("expected.safetensors"));
        for (String name : got.tensors().keySet()) {
            assertEquals(DType.F32, got.dtype(name), name + " dtype");
            assertClose("opencl", name, expected.tensor(name), got.tensor(name), 1e-4);
        }
        assertEquals("opencl", got.metadata().get("backend"));
    }

    /** Runs with the case's inputs replaced by {@code inputs} and checks for exit 2 and one line containing {@code message}. */
    private void rejects(String caseName, Map<String, Tensor> inputs, List<String> extra, String message) throws IOException {
        Path in = dir.resolve("in.safetensors");
        SafeTensors.Writer w = SafeTensors.writer();
        inputs.forEach(w::put);
        w.save(in);
        Path out = dir.resolve("out.safetensors");
        List<String> a = args(caseName, out);
        a.set(a.indexOf("--inputs") + 1, in.toString());
        for (int i = 0; i < extra.size(); i++) {
            // An option already present (--score) takes the new value; others are appended.
            int at = a.indexOf(extra.get(i));
            if (at >= 0 && i + 1 < extra.size()) a.set(at + 1, extra.get(++i));
            else a.add(extra.get(i));
        }
        a.addAll(List.of("--backend", "reference"));
        CliRun r = CliRun.of(a.toArray(String[]::new));
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.errLines().length, r.toString());
        assertEquals("", r.out(), r.toString());
        assertTrue(r.err().startsWith("recur attention: "), r.toString());
        assertTrue(r.err().contains(message), "expected '" + message + "' in: " + r.err());
        assertFalse(out.toFile().exists(), "no output after a rejected input");
    }

    private static Map<String, Tensor> caseInputs(String caseName) throws IOException {
        return new LinkedHashMap<>(SafeTensors.read(caseDir(caseName).resolve("inputs.safetensors")).tensors());
    }

    @Test
    void badInputsExitTwoWithOneLineNamingTheProblem() throws IOException {
        Map<String, Tensor> in = caseInputs("dot_masked");
        in.put("mask", Tensor.full(2.0, 3, 5));
        rejects("dot_masked", in, List.of(), "mask: expected 0 or 1 at [0, 0], got 2.0");

        in = caseInputs("dot_masked");
        in.remove("dcontext");
        rejects("dot_masked", in, List.of("--backward"), "dcontext: required with --backward, shape [4, 3, 6]");

        in = caseInputs("general_hd_lt_he");
        rejects("general_hd_lt_he", in, List.of("--score", "dot"), "dot needs the width of dec (4) to equal that of enc (7)");

        in = caseInputs("additive_masked");
        in.put("enc", Tensor.zeros(6, 2, 3));
        rejects("additive_masked", in, List.of(), "enc: expected batch 3 (from dec) in dimension 1, got shape [6, 2, 3]");

        in = caseInputs("additive_masked");
        in.put("extra", Tensor.zeros(1));
        rejects("additive_masked", in, List.of(), "unexpected tensor 'extra'");

        // Weights of the wrong score: W_a handed to additive.
        Path out = dir.resolve("o.safetensors");
        List<String> a = args("additive_masked", out);
        a.set(a.indexOf("--weights") + 1, caseDir("general_hd_lt_he").resolve("weights.safetensors").toString());
        CliRun r = CliRun.of(a.toArray(String[]::new));
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("W1 [A, 3] is missing"), r.toString());

        r = CliRun.of("attention", "--score", "luong", "--inputs", "x", "--out", "y");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("expected one of dot, general, additive, scaled, got 'luong'"), r.toString());

        a = args("general_hd_gt_he", out);
        a.remove(a.size() - 1);
        a.remove(a.size() - 1);
        r = CliRun.of(a.toArray(String[]::new));
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains("--weights: required for --score general (W_a)"), r.toString());
        assertEquals(Set.of(), Set.of(dir.toFile().list()).stream().filter(f -> f.startsWith("o.")).collect(java.util.stream.Collectors.toSet()));
    }
}
