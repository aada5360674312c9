package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Shapes;
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
 * {@code recur forward}: runs a network on tensors from safetensors files and writes the results, the
 * interop and verification path with PyTorch (same names, shapes and state order).
 */
@Command(name = "forward", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
        description = {
                "Run a recurrent network forward (and with --backward, one backward pass) on tensors from safetensors files.",
                "",
                "INPUTS holds x [T,B,I] (time-major); optional h0 [L*D,B,Hout], c0 [L*D,B,H] (LSTM), lengths [B] (I32 or I64,"
                        + " each in [1,T]); with --backward dy [T,B,D*Hout] and optional dhn, dcn (zeros when absent)."
                        + " State index = layer*D + direction, as PyTorch.",
                "WEIGHTS holds the parameters by PyTorch state_dict names (weight_ih_l0, weight_hh_l0_reverse, ...).",
                "OUT receives y, h_n, c_n (LSTM); with --backward also dx, dh0, dc0 (LSTM) and d<name> for every parameter,"
                        + " the gradients of sum(y*dy) + sum(h_n*dhn) + sum(c_n*dcn).",
                ""})
final class ForwardCommand implements Callable<Integer> {
    private static final List<String> INPUT_NAMES = List.of("x", "h0", "c0", "lengths", "dy", "dhn", "dcn");

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Option(names = "--cell", required = true, paramLabel = "lstm|gru|rnn_tanh|rnn_relu", converter = CellConverter.class,
            description = "The recurrent cell.")
    CellType cell;

    @Option(names = "--input-size", required = true, paramLabel = "I", description = "Features per input step.")
    int inputSize;

    @Option(names = "--hidden-size", required = true, paramLabel = "H", description = "Hidden (cell) state width.")
    int hiddenSize;

    @Option(names = "--layers", defaultValue = "1", paramLabel = "L", description = "Stacked layers (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--bidirectional", description = "Two directions per layer, outputs concatenated [forward; reverse].")
    boolean bidirectional;

    @Option(names = "--proj-size", defaultValue = "0", paramLabel = "P",
            description = "LSTM projection size, PyTorch's proj_size (default: none).")
    int projSize;

    @Option(names = "--gru-reset", paramLabel = "after|before", converter = GruResetConverter.class,
            description = "GRU reset gate after the recurrent matmul (PyTorch, default) or before it (Cho et al. 2014).")
    GruReset gruReset;

    @Option(names = "--weights", required = true, paramLabel = "W.safetensors", description = "Parameters by PyTorch names.")
    Path weights;

    @Option(names = "--inputs", required = true, paramLabel = "IN.safetensors", description = "x and optional states, lengths, gradients.")
    Path inputs;

    @Option(names = "--out", required = true, paramLabel = "OUT.safetensors", description = "Where to write the results (replaced atomically).")
    Path out;

    @Option(names = "--backward", description = "Also run one backward pass from dy, dhn, dcn and write the gradients.")
    boolean backward;

    @Option(names = "--backend", paramLabel = "reference|cpu|opencl|cuda",
            description = "Where to run (default: the best available, see 'recur devices').")
    String backend;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "f32|f64", converter = DTypeConverter.class,
            description = "Element type of the results (default: ${DEFAULT-VALUE}).")
    DType dtype;

    @Override
    public Integer call() throws IOException {
        RnnConfig config = config();
        AppSupport.outputFile(spec.commandLine(), "--out", out);
        SafeTensors w = AppSupport.readSafeTensors(spec.commandLine(), "--weights", weights);
        RnnWeights rnnWeights;
        try {
            rnnWeights = RnnWeights.of(config, w.floatTensors());
        } catch (IllegalArgumentException e) {
            throw bad("--weights " + weights + ": " + stripPrefix(e.getMessage(), "weights: "));
        }
        SafeTensors in = AppSupport.readSafeTensors(spec.commandLine(), "--inputs", inputs);
        Inputs args = inputs(config, in);
        String backendName = backend != null ? backend : Backends.bestName();
        try {
            Backends.provider(backendName);
        } catch (IllegalArgumentException e) {
            throw bad("--backend: " + stripPrefix(e.getMessage(), "backend: "));
        }

        SafeTensors.Writer result = SafeTensors.writer();
        try (Backend be = Backends.open(backendName); Rnn rnn = Rnn.create(config, be, rnnWeights)) {
            RnnInput ri = new RnnInput(args.x, args.h0, args.c0, args.lengths);
            if (!backward) {
                try (RnnOutput o = checkingInputs(() -> rnn.forward(ri))) {
                    putOutputs(result, o);
                }
            } else {
                try (RnnOutput o = checkingInputs(() -> rnn.forwardTraining(ri, 0L))) {
                    putOutputs(result, o);
                    RnnGradients g = checkingInputs(() -> rnn.backward(o, args.dy, args.dhn, args.dcn));
                    result.put("dx", g.dx(), dtype).put("dh0", g.dh0(), dtype);
                    if (g.dc0() != null) result.put("dc0", g.dc0(), dtype);
                    for (Map.Entry<String, Tensor> e : g.weights().entrySet()) result.put("d" + e.getKey(), e.getValue(), dtype);
                }
            }
            result.metadata("backend", be.name()).metadata("device", be.deviceName());
        }
        result.metadata("cell", cell.cliName())
                .metadata("input_size", String.valueOf(inputSize))
                .metadata("hidden_size", String.valueOf(hiddenSize))
                .metadata("num_layers", String.valueOf(layers))
                .metadata("bidirectional", String.valueOf(bidirectional))
                .metadata("proj_size", String.valueOf(projSize));
        result.save(out);
        PrintWriter stdout = spec.commandLine().getOut();
        stdout.println("wrote " + out + ": " + String.join(", ", result.names()) + " (backend " + backendName + ", "
                + dtype + ")");
        stdout.flush();
        return 0;
    }

    private RnnConfig config() {
        AppSupport.positive(spec.commandLine(), "--input-size", inputSize);
        AppSupport.positive(spec.commandLine(), "--hidden-size", hiddenSize);
        AppSupport.positive(spec.commandLine(), "--layers", layers);
        if (projSize < 0) throw bad("--proj-size: expected >= 0, got " + projSize);
        if (projSize > 0 && cell != CellType.LSTM) throw bad("--proj-size: only --cell lstm has a projection, got --cell " + cell.cliName());
        if (projSize >= hiddenSize) throw bad("--proj-size: expected < --hidden-size (" + hiddenSize + "), got " + projSize);
        if (gruReset != null && cell != CellType.GRU) throw bad("--gru-reset: applies only to --cell gru, got --cell " + cell.cliName());
        try {
            return RnnConfig.builder(cell, inputSize, hiddenSize)
                    .layers(layers)
                    .bidirectional(bidirectional)
                    .projSize(projSize)
                    .gruReset(gruReset != null ? gruReset : GruReset.AFTER)
                    .build();
        } catch (IllegalArgumentException e) {
            throw bad(e.getMessage());
        }
    }

    private record Inputs(Tensor x, Tensor h0, Tensor c0, int[] lengths, Tensor dy, Tensor dhn, Tensor dcn) {}

    /** Every input checked against the configuration before anything runs. */
    private Inputs inputs(RnnConfig c, SafeTensors in) {
        String where = "--inputs " + inputs + ": ";
        for (String name : in.tensors().keySet()) {
            if (!INPUT_NAMES.contains(name)) {
                throw bad(where + "unexpected tensor '" + name + "' (expected " + String.join(", ", INPUT_NAMES) + ")");
            }
        }
        Map<String, Tensor> t = in.tensors();
        Tensor x = t.get("x");
        if (x == null) throw bad(where + "missing tensor 'x' [T, B, I=" + inputSize + "]");
        if (x.rank() != 3 || x.dim(2) != inputSize || x.dim(0) == 0 || x.dim(1) == 0) {
            throw bad(where + "x: expected shape [T, B, " + inputSize + "] with T, B > 0, got " + Arrays.toString(x.shape()));
        }
        int steps = x.dim(0), batch = x.dim(1), ld = c.numLayers() * c.directions();
        boolean lstm = c.cell() == CellType.LSTM;
        try {
            Shapes.optional("h0", t.get("h0"), ld, batch, c.outSize());
            if (!lstm && t.containsKey("c0")) throw new IllegalArgumentException("c0: only --cell lstm has a cell state");
            if (lstm) Shapes.optional("c0", t.get("c0"), ld, batch, c.hiddenSize());
            if (!lstm && t.containsKey("dcn")) throw new IllegalArgumentException("dcn: only --cell lstm has a cell state");
            if (backward) {
                if (!t.containsKey("dy")) {
                    throw new IllegalArgumentException("dy: required with --backward, shape [" + steps + ", " + batch + ", "
                            + c.outputWidth() + "]");
                }
                Shapes.require("dy", t.get("dy"), steps, batch, c.outputWidth());
                Shapes.optional("dhn", t.get("dhn"), ld, batch, c.outSize());
                if (lstm) Shapes.optional("dcn", t.get("dcn"), ld, batch, c.hiddenSize());
            }
        } catch (IllegalArgumentException e) {
            throw bad(where + e.getMessage());
        }
        int[] lengths = null;
        Tensor l = t.get("lengths");
        if (l != null) {
            DType d = in.dtype("lengths");
            if (!d.isInteger()) throw bad(where + "lengths: expected dtype I32 or I64, got " + d);
            if (!l.sameShape(batch)) throw bad(where + "lengths: expected shape [" + batch + "], got " + Arrays.toString(l.shape()));
            lengths = new int[batch];
            for (int b = 0; b < batch; b++) {
                double v = l.data()[b];
                if (v < 1 || v > steps) throw bad(where + "lengths: entry " + b + " must be in [1, " + steps + "], got " + (long) v);
                lengths[b] = (int) v;
            }
        }
        return new Inputs(x, t.get("h0"), t.get("c0"), lengths, t.get("dy"), t.get("dhn"), t.get("dcn"));
    }

    /** Input checks inside {@link Rnn} name the tensor; prefix the file so the one line says where it is. */
    private <T> T checkingInputs(Supplier<T> call) {
        try {
            return call.get();
        } catch (IllegalArgumentException e) {
            throw bad("--inputs " + inputs + ": " + e.getMessage());
        }
    }

    private void putOutputs(SafeTensors.Writer w, RnnOutput o) {
        w.put("y", o.y(), dtype).put("h_n", o.hN(), dtype);
        if (o.cN() != null) w.put("c_n", o.cN(), dtype);
    }

    private ParameterException bad(String message) {
        return new Main.BadInput(spec.commandLine(), message);
    }

    private static String stripPrefix(String s, String prefix) {
        return s != null && s.startsWith(prefix) ? s.substring(prefix.length()) : s;
    }

    static final class CellConverter implements CommandLine.ITypeConverter<CellType> {
        @Override
        public CellType convert(String value) {
            try {
                return CellType.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException("expected one of lstm, gru, rnn_tanh, rnn_relu, got '" + value + "'");
            }
        }
    }

    static final class GruResetConverter implements CommandLine.ITypeConverter<GruReset> {
        @Override
        public GruReset convert(String value) {
            try {
                return GruReset.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException("expected after or before, got '" + value + "'");
            }
        }
    }

    static final class DTypeConverter implements CommandLine.ITypeConverter<DType> {
        @Override
        public DType convert(String value) {
            if (value.equalsIgnoreCase("f32")) return DType.F32;
            if (value.equalsIgnoreCase("f64")) return DType.F64;
            throw new CommandLine.TypeConversionException("expected f32 or f64, got '" + value + "'");
        }
    }
}
