package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.config.GruReset;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.Rnn;
import dev.recur.parity.ParityCase;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ForwardCommandTest {
    @TempDir
    Path dir;

    /** The network options for a fixture case, as a user would type them. */
    private static List<String> configArgs(ParityCase pc) {
        var c = pc.config();
        List<String> a = new ArrayList<>(List.of("forward", "--cell", c.cell().cliName(),
                "--input-size", String.valueOf(c.inputSize()), "--hidden-size", String.valueOf(c.hiddenSize()),
                "--layers", String.valueOf(c.numLayers())));
        if (c.bidirectional()) a.add("--bidirectional");
        if (c.projSize() > 0) a.addAll(List.of("--proj-size", String.valueOf(c.projSize())));
        return a;
    }

    private static List<String> fileArgs(Path weights, Path inputs, Path out) {
        return List.of("--weights", weights.toString(), "--inputs", inputs.toString(), "--out", out.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"lstm_proj_bi_varlen", "lstm_3layer_bi_short", "gru_odd", "rnn_tanh_2layer_bi_varlen",
            "lstm_batch1_nostate"})
    void forwardBackwardReproducesPyTorch(String caseName) throws IOException {
        ParityCase pc = ParityCase.load(caseName);
        Path out = dir.resolve(caseName + ".out.safetensors");
        List<String> args = new ArrayList<>(configArgs(pc));
        args.addAll(fileArgs(pc.dir().resolve("weights.safetensors"), pc.dir().resolve("inputs.safetensors"), out));
        args.addAll(List.of("--backward", "--backend", "reference", "--dtype", "f64"));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        assertEquals("", r.err(), r.toString());

        SafeTensors got = SafeTensors.read(out);
        assertEquals(pc.expected().tensors().keySet(), got.tensors().keySet(), "result names");
        for (String name : got.tensors().keySet()) assertEquals(DType.F64, got.dtype(name), name + " dtype");
        List<String> failures = pc.mismatches(got.tensors(), 1e-5);
        assertTrue(failures.isEmpty(), caseName + ":\n  " + String.join("\n  ", failures));
        assertEquals("reference", got.metadata().get("backend"));
    }

    @Test
    void forwardOnlyOnTheDefaultBackendWritesFloat32Outputs() throws IOException {
        ParityCase pc = ParityCase.load("lstm_proj_bi_varlen");
        Path out = dir.resolve("fwd.safetensors");
        List<String> args = new ArrayList<>(configArgs(pc));
        args.addAll(fileArgs(pc.dir().resolve("weights.safetensors"), pc.dir().resolve("inputs.safetensors"), out));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        String best = Backends.bestName();
        assertEquals("wrote " + out + ": y, h_n, c_n (backend " + best + ", F32)", r.out().strip(), r.toString());

        SafeTensors got = SafeTensors.read(out);
        assertEquals(List.of("y", "h_n", "c_n"), new ArrayList<>(got.tensors().keySet()));
        assertEquals(best, got.metadata().get("backend"));
        double tol = best.equals("reference") ? 1e-5 : 1e-4;
        for (String name : got.tensors().keySet()) {
            assertEquals(DType.F32, got.dtype(name), name + " dtype");
            String failure = ParityCase.compare(name, pc.expected().tensor(name), got.tensor(name), tol);
            assertEquals(null, failure, name);
        }
    }

    @Test
    void gruResetBeforeIsPassedThrough() throws IOException {
        // PyTorch has only reset-after; the CLI must run the other convention, as the in-process API does.
        ParityCase pc = ParityCase.load("gru_odd");
        Path out = dir.resolve("before.safetensors");
        List<String> args = new ArrayList<>(configArgs(pc));
        args.addAll(fileArgs(pc.dir().resolve("weights.safetensors"), pc.dir().resolve("inputs.safetensors"), out));
        args.addAll(List.of("--gru-reset", "before", "--backward", "--backend", "reference", "--dtype", "f64"));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        SafeTensors got = SafeTensors.read(out);

        RnnConfig before = pc.config().toBuilder().gruReset(GruReset.BEFORE).build();
        try (Backend be = Backends.open("reference");
             Rnn rnn = Rnn.create(before, be, RnnWeights.of(before, pc.weights().asMap()));
             RnnOutput o = rnn.forwardTraining(pc.rnnInput(), 0L)) {
            RnnGradients g = rnn.backward(o, pc.input("dy"), pc.input("dhn"), null);
            assertEquals(null, ParityCase.compare("y", o.y(), got.tensor("y"), 0));
            assertEquals(null, ParityCase.compare("h_n", o.hN(), got.tensor("h_n"), 0));
            assertEquals(null, ParityCase.compare("dx", g.dx(), got.tensor("dx"), 0));
            assertEquals(null, ParityCase.compare("dweight_hh_l0", g.weight("weight_hh_l0"), got.tensor("dweight_hh_l0"), 0));
        }
        // And it is not PyTorch's convention.
        assertTrue(ParityCase.compare("y", pc.expected().tensor("y"), got.tensor("y"), 1e-3) != null,
                "reset-before should differ from PyTorch's reset-after");
    }

    // ---------------------------------------------------------------- bad input: exit 2, one line naming it

    private Path weights;
    private Path inputs;
    private Path out;

    private List<String> lstmOddArgs(Path w, Path in, String... extra) throws IOException {
        ParityCase pc = ParityCase.load("lstm_odd");
        weights = pc.dir().resolve("weights.safetensors");
        inputs = pc.dir().resolve("inputs.safetensors");
        out = dir.resolve("out.safetensors");
        List<String> a = new ArrayList<>(configArgs(pc));
        a.addAll(fileArgs(w != null ? w : weights, in != null ? in : inputs, out));
        a.addAll(Arrays.asList(extra));
        return a;
    }

    /** Runs {@code args}; expects exit 2, one stderr line containing every fragment, and the old output untouched. */
    private void assertBad(List<String> args, String... fragments) throws IOException {
        Path target = Path.of(args.get(args.indexOf("--out") + 1));
        boolean existed = target.getParent() != null && Files.isDirectory(target.getParent());
        byte[] previous = "previous contents".getBytes();
        if (existed) Files.write(target, previous);
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.errLines().length, "exactly one line on stderr: " + r);
        assertEquals("", r.out(), r.toString());
        for (String f : fragments) assertTrue(r.err().contains(f), "stderr should name '" + f + "': " + r);
        assertTrue(r.err().startsWith("recur forward: "), r.toString());
        if (existed) assertArrayEquals(previous, Files.readAllBytes(target), "the previous output must be untouched");
    }

    private Path writeInputs(String name, Map<String, Tensor> tensors, Map<String, DType> dtypes) throws IOException {
        SafeTensors.Writer w = SafeTensors.writer();
        tensors.forEach((k, v) -> w.put(k, v, dtypes.getOrDefault(k, DType.F32)));
        Path p = dir.resolve(name + ".safetensors");
        w.save(p);
        return p;
    }

    @Test
    void badOptionsExitTwoNamingTheOption() throws IOException {
        assertBad(lstmOddArgs(null, null, "--frobnicate"), "--frobnicate");
        List<String> noWeights = lstmOddArgs(null, null);
        int i = noWeights.indexOf("--weights");
        noWeights.remove(i);
        noWeights.remove(i);
        assertBad(noWeights, "--weights");
        List<String> badCell = lstmOddArgs(null, null);
        badCell.set(badCell.indexOf("lstm"), "lstmx");
        assertBad(badCell, "--cell", "lstmx");
        List<String> badSize = lstmOddArgs(null, null);
        badSize.set(badSize.indexOf("--input-size") + 1, "seven");
        assertBad(badSize, "--input-size", "seven");
        List<String> zeroLayers = lstmOddArgs(null, null);
        zeroLayers.set(zeroLayers.indexOf("--layers") + 1, "0");
        assertBad(zeroLayers, "--layers", "got 0");
        assertBad(lstmOddArgs(null, null, "--backend", "abacus"), "--backend", "abacus");
        assertBad(lstmOddArgs(null, null, "--dtype", "i32"), "--dtype", "i32");
        assertBad(lstmOddArgs(null, null, "--gru-reset", "before"), "--gru-reset");
        List<String> gruProj = lstmOddArgs(null, null, "--proj-size", "3");
        gruProj.set(gruProj.indexOf("lstm"), "gru");
        assertBad(gruProj, "--proj-size");
    }

    @Test
    void missingOrCorruptFilesExitTwoNamingTheFile() throws IOException {
        Path missing = dir.resolve("missing.safetensors");
        assertBad(lstmOddArgs(missing, null), "--weights", "no such file", missing.toString());
        assertBad(lstmOddArgs(null, missing), "--inputs", "no such file", missing.toString());

        lstmOddArgs(null, null);
        byte[] good = Files.readAllBytes(inputs);
        Path truncated = dir.resolve("truncated.safetensors");
        Files.write(truncated, Arrays.copyOf(good, good.length - 3));
        assertBad(lstmOddArgs(null, truncated), "--inputs", truncated.toString(), "truncated");

        List<String> inMissingFolder = lstmOddArgs(null, null);
        inMissingFolder.set(inMissingFolder.indexOf("--out") + 1, dir.resolve("nope/out.safetensors").toString());
        assertBad(inMissingFolder, "--out", "nope");

        // The weights of another configuration: the message names the tensor and both shapes.
        List<String> wrongHidden = lstmOddArgs(null, null);
        wrongHidden.set(wrongHidden.indexOf("--hidden-size") + 1, "12");
        assertBad(wrongHidden, "--weights", "weight_ih_l0", "[48, 7]", "[52, 7]");
        assertBad(lstmOddArgs(inputs, null), "--weights", "missing tensor 'weight_ih_l0'");
    }

    @Test
    void badInputTensorsExitTwoNamingTheTensor() throws IOException {
        lstmOddArgs(null, null);
        Map<String, Tensor> in = SafeTensors.load(inputs);
        Tensor x = in.get("x");

        Path wrongH0 = writeInputs("wrong_h0", Map.of("x", x, "h0", Tensor.zeros(1, 3, 12)), Map.of());
        assertBad(lstmOddArgs(null, wrongH0), "--inputs", "h0", "[1, 3, 13]", "[1, 3, 12]");

        Path floatLengths = writeInputs("float_lengths", Map.of("x", x, "lengths", Tensor.of(new double[] {5, 4, 3}, 3)), Map.of());
        assertBad(lstmOddArgs(null, floatLengths), "lengths", "I32 or I64", "F32");

        Path zeroLength = writeInputs("zero_length", Map.of("x", x, "lengths", Tensor.of(new double[] {5, 0, 3}, 3)),
                Map.of("lengths", DType.I64));
        assertBad(lstmOddArgs(null, zeroLength), "lengths", "entry 1", "[1, 5]", "got 0");

        Path noDy = writeInputs("no_dy", Map.of("x", x), Map.of());
        assertBad(lstmOddArgs(null, noDy, "--backward"), "dy", "--backward");

        Path wrongDy = writeInputs("wrong_dy", Map.of("x", x, "dy", Tensor.zeros(5, 3, 26)), Map.of());
        assertBad(lstmOddArgs(null, wrongDy, "--backward"), "dy", "[5, 3, 13]", "[5, 3, 26]");

        Path typo = writeInputs("typo", Map.of("x", x, "h_0", Tensor.zeros(1, 3, 13)), Map.of());
        assertBad(lstmOddArgs(null, typo), "unexpected tensor 'h_0'");

        Path noX = writeInputs("no_x", Map.of("h0", Tensor.zeros(1, 3, 13)), Map.of());
        assertBad(lstmOddArgs(null, noX), "missing tensor 'x'");

        Path wrongX = writeInputs("wrong_x", Map.of("x", Tensor.zeros(5, 3, 8)), Map.of());
        assertBad(lstmOddArgs(null, wrongX), "x", "[5, 3, 8]");

        ParityCase gru = ParityCase.load("gru_odd");
        List<String> gruArgs = new ArrayList<>(configArgs(gru));
        Path withC0 = writeInputs("gru_c0", Map.of("x", x, "c0", Tensor.zeros(1, 3, 13)), Map.of());
        gruArgs.addAll(fileArgs(gru.dir().resolve("weights.safetensors"), withC0, dir.resolve("gru.out.safetensors")));
        assertBad(gruArgs, "c0", "lstm");
    }

    @Test
    void verbosePrintsTheStackTraceAndHelpDescribesTheFiles() throws IOException {
        Path missing = dir.resolve("missing.safetensors");
        CliRun r = CliRun.of(lstmOddArgs(missing, null, "--verbose").toArray(String[]::new));
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.errLines().length > 3 && r.err().contains("\tat "), "a stack trace: " + r);
        String[] lines = r.errLines();
        assertTrue(lines[lines.length - 1].contains("no such file"), r.toString());

        CliRun help = CliRun.of("forward", "--help");
        assertEquals(0, help.code(), help.toString());
        for (String s : Set.of("--cell", "--weights", "--inputs", "--out", "--backward", "--backend", "State index")) {
            assertTrue(help.out().contains(s), "help should mention " + s + ": " + help);
        }
    }
}
