package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.attention.Attention;
import dev.recur.tensor.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * {@code recur attention}: attention scores, weights and context (and with {@code --backward} their
 * gradients) for tensors from safetensors files; the interop and verification path with PyTorch.
 * The sizes come from the tensors: Hd from {@code dec}, He from {@code enc}, A from {@code W1}.
 */
@Command(name = "attention", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "Score decoder states against encoder states, apply the masked softmax and form the context"
                        + " (and with --backward, one backward pass), on tensors from safetensors files.",
                "",
                "INPUTS holds dec [U,B,Hd], enc [T,B,He], mask [B,T] (F32 or an integer type; 1 = valid, 0 = masked;"
                        + " all valid when absent) and, with --backward, dcontext [U,B,He].",
                "WEIGHTS holds W_a [Hd,He] (general) or W1 [A,He], W2 [A,Hd], v [A] (additive); dot and scaled have no"
                        + " weights (the option may then be omitted).",
                "OUT receives scores [U,B,T] (raw, before masking), weights [U,B,T], context [U,B,He]; with --backward"
                        + " also dscores, ddec, denc and d<name> for every weight, the gradients of sum(context*dcontext).",
                ""})
final class AttentionCommand implements Callable<Integer> {
    private static final List<String> INPUT_NAMES = List.of("dec", "enc", "mask", "dcontext");

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--score", required = true, paramLabel = "dot|general|additive|scaled", converter = ScoreConverter.class,
            description = "The score function: dot (Luong), general (dec·W_a·enc), additive (Bahdanau), scaled (dot/sqrt(He)).")
    AttentionScore score;

    @Option(names = "--weights", paramLabel = "W.safetensors", description = "W_a (general) or W1, W2, v (additive).")
    Path weights;

    @Option(names = "--inputs", required = true, paramLabel = "IN.safetensors", description = "dec, enc, mask and, with --backward, dcontext.")
    Path inputs;

    @Option(names = "--out", required = true, paramLabel = "OUT.safetensors", description = "Where to write the results (replaced atomically).")
    Path out;

    @Option(names = "--backward", description = "Also run one backward pass from dcontext and write the gradients.")
    boolean backward;

    @Option(names = "--backend", paramLabel = "reference|cpu|opencl|cuda",
            description = "Where to run (default: the best available, see 'recur devices').")
    String backend;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "f32|f64", converter = ForwardCommand.DTypeConverter.class,
            description = "Element type of the results (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Override
    public Integer call() throws IOException {
        AppSupport.outputFile(spec.commandLine(), "--out", out);
        SafeTensors in = AppSupport.readSafeTensors(spec.commandLine(), "--inputs", inputs);
        String where = "--inputs " + inputs + ": ";
        for (String name : in.tensors().keySet()) {
            if (!INPUT_NAMES.contains(name)) {
                throw bad(where + "unexpected tensor '" + name + "' (expected " + String.join(", ", INPUT_NAMES) + ")");
            }
        }
        Tensor dec = in.tensors().get("dec"), enc = in.tensors().get("enc");
        if (dec == null) throw bad(where + "missing tensor 'dec' [U, B, Hd]");
        if (enc == null) throw bad(where + "missing tensor 'enc' [T, B, He]");
        if (dec.rank() != 3) throw bad(where + "dec: expected rank 3 [U, B, Hd], got shape " + Arrays.toString(dec.shape()));
        if (enc.rank() != 3) throw bad(where + "enc: expected rank 3 [T, B, He], got shape " + Arrays.toString(enc.shape()));
        Tensor dctx = in.tensors().get("dcontext");
        if (backward && dctx == null) {
            throw bad(where + "dcontext: required with --backward, shape [" + dec.dim(0) + ", " + dec.dim(1) + ", " + enc.dim(2) + "]");
        }

        Map<String, Tensor> w = Map.of();
        if (weights != null) {
            w = AppSupport.readSafeTensors(spec.commandLine(), "--weights", weights).tensors();
        } else if (!score.weightNames().isEmpty()) {
            throw bad("--weights: required for --score " + score.label() + " (" + String.join(", ", score.weightNames()) + ")");
        }
        AttentionConfig config;
        AttentionWeights aw;
        try {
            config = config(dec.dim(2), enc.dim(2), w);
        } catch (IllegalArgumentException e) {
            throw bad(where + e.getMessage());
        }
        try {
            aw = AttentionWeights.of(config, w);
        } catch (IllegalArgumentException e) {
            throw bad("--weights " + weights + ": " + stripPrefix(e.getMessage(), "weights: "));
        }
        String backendName = backend != null ? backend : Backends.bestName();
        try {
            Backends.provider(backendName);
        } catch (IllegalArgumentException e) {
            throw bad("--backend: " + stripPrefix(e.getMessage(), "backend: "));
        }
        Tensor mask = in.tensors().get("mask");

        SafeTensors.Writer result = SafeTensors.writer();
        try (Backend be = Backends.open(backendName); Attention att = Attention.create(config, be, aw)) {
            AttentionOutput o = checkingInputs(() -> att.forward(dec, enc, mask));
            result.put("scores", o.scores(), dtype).put("weights", o.weights(), dtype).put("context", o.context(), dtype);
            if (backward) {
                AttentionGradients g = checkingInputs(() -> att.backward(dec, enc, mask, dctx));
                result.put("dscores", g.dscores(), dtype).put("ddec", g.ddec(), dtype).put("denc", g.denc(), dtype);
                for (String name : score.weightNames()) result.put("d" + name, g.weight(name), dtype);
            }
            result.metadata("backend", be.name()).metadata("device", be.deviceName());
        }
        result.metadata("score", score.label())
                .metadata("decoder_size", String.valueOf(config.decoderSize()))
                .metadata("encoder_size", String.valueOf(config.encoderSize()))
                .metadata("attention_size", String.valueOf(config.attentionSize()));
        result.save(out);
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.println("wrote " + out + ": " + String.join(", ", result.names()) + " (backend " + backendName + ", "
                + dtype + ")");
        stdout.flush();
        return 0;
    }

    /** Hd and He from the inputs; A from W1 (additive), so the weights file is the only place it is given. */
    private AttentionConfig config(int hd, int he, Map<String, Tensor> w) {
        int a = 0;
        if (score == AttentionScore.ADDITIVE) {
            Tensor w1 = w.get("W1");
            if (w1 == null || w1.rank() != 2) {
                throw bad("--weights " + weights + ": W1 [A, " + he + "] is " + (w1 == null ? "missing"
                        : "expected to have rank 2, got shape " + Arrays.toString(w1.shape())));
            }
            a = w1.dim(0);
        }
        if ((score == AttentionScore.DOT || score == AttentionScore.SCALED) && hd != he) {
            throw new IllegalArgumentException("dec: --score " + score.label() + " needs the width of dec (" + hd
                    + ") to equal that of enc (" + he + "); use general or additive for different widths");
        }
        return new AttentionConfig(score, hd, he, a);
    }

    /** Checks inside {@link Attention} name the tensor; prefix the file so the one line says where it is. */
    private <T> T checkingInputs(Supplier<T> call) {
        try {
            return call.get();
        } catch (IllegalArgumentException e) {
            throw bad("--inputs " + inputs + ": " + e.getMessage());
        }
    }

    private ParameterException bad(String message) {
        return new Main.BadInput(spec.commandLine(), message);
    }

    private static String stripPrefix(String s, String prefix) {
        return s != null && s.startsWith(prefix) ? s.substring(prefix.length()) : s;
    }

    static final class ScoreConverter implements CommandLine.ITypeConverter<AttentionScore> {
        @Override
        public AttentionScore convert(String value) {
            try {
                return AttentionScore.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException("expected one of dot, general, additive, scaled, got '" + value + "'");
            }
        }
    }
}
