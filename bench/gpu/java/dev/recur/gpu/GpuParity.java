package dev.recur.gpu;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.io.SafeTensors;
import dev.recur.nn.attention.Attention;
import dev.recur.parity.ParityCase;
import dev.recur.tensor.Tensor;

import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The committed PyTorch fixtures ({@code tests/fixtures/parity}: RNN forward and backward; {@code tests/fixtures/attention})
 * on one backend, without JUnit: what {@code PyTorchParityTest} and {@code AttentionParityTest} check, for a machine
 * with a JDK runtime and nothing else ({@code bench/gpu/run}). The fixtures are read from the class path
 * ({@code fixtures/...}), as the tests read them.
 *
 * <p>Prints one JSON line per case and a summary line; exits 0 when every case matches, 1 when one does not, 3 when
 * the backend is unavailable (the reason on the summary line), 2 for a bad argument.
 */
public final class GpuParity {
    private GpuParity() {}

    public static void main(String[] args) throws Exception {
        String backendName = "cuda";
        double tol = 1e-4;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--backend" -> backendName = value(args, ++i, "--backend");
                case "--tolerance" -> tol = Double.parseDouble(value(args, ++i, "--tolerance"));
                default -> {
                    System.err.println("gpu-parity: unknown argument '" + args[i] + "' (expected --backend NAME, --tolerance TOL)");
                    System.exit(2);
                }
            }
        }
        BackendProvider p = Backends.provider(backendName);
        BackendProvider.Availability a = p.probe();
        if (!a.available()) {
            System.out.println("{\"summary\":true,\"backend\":" + q(backendName) + ",\"available\":false,\"reason\":" + q(a.detail()) + "}");
            System.exit(3);
        }
        int passed = 0, failed = 0;
        long t0 = System.nanoTime();
        try (Backend be = p.open()) {
            for (String c : ParityCase.names()) {
                List<String> f = rnnCase(be, c, tol);
                System.out.println(line("rnn", c, backendName, f));
                if (f.isEmpty()) passed++;
                else failed++;
            }
            for (String c : names("fixtures/attention/cases.txt")) {
                List<String> f = attentionCase(be, c, tol);
                System.out.println(line("attention", c, backendName, f));
                if (f.isEmpty()) passed++;
                else failed++;
            }
            System.out.println("{\"summary\":true,\"backend\":" + q(backendName) + ",\"device\":" + q(be.deviceName())
                    + ",\"available\":true,\"passed\":" + passed + ",\"failed\":" + failed + ",\"tolerance\":" + tol
                    + ",\"seconds\":" + String.format(java.util.Locale.ROOT, "%.2f", (System.nanoTime() - t0) / 1e9) + "}");
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    private static String value(String[] args, int i, String opt) {
        if (i >= args.length) {
            System.err.println("gpu-parity: " + opt + " needs a value");
            System.exit(2);
        }
        return args[i];
    }

    /** What PyTorchParityTest compares: training forward, backward, every gradient, and the inference y. */
    static List<String> rnnCase(Backend be, String name, double tol) {
        try {
            return ParityCase.load(name).check(be, tol);
        } catch (Exception | LinkageError e) {
            return List.of("threw " + e);
        }
    }

    /** What AttentionParityTest compares: scores, weights, context and every gradient. */
    static List<String> attentionCase(Backend be, String name, double tol) {
        try {
            Path dir = dir("fixtures/attention/" + name);
            SafeTensors expected = SafeTensors.read(dir.resolve("expected.safetensors"));
            SafeTensors in = SafeTensors.read(dir.resolve("inputs.safetensors"));
            Map<String, String> meta = expected.metadata();
            AttentionConfig cfg = new AttentionConfig(AttentionScore.parse(meta.get("score")), Integer.parseInt(meta.get("decoder_size")),
                    Integer.parseInt(meta.get("encoder_size")), Integer.parseInt(meta.get("attention_size")));
            AttentionWeights w = AttentionWeights.of(cfg, SafeTensors.load(dir.resolve("weights.safetensors")));
            Tensor dec = in.tensor("dec"), enc = in.tensor("enc"), mask = in.tensor("mask"), dctx = in.tensor("dcontext");
            List<String> failures = new ArrayList<>();
            try (Attention att = Attention.create(cfg, be, w)) {
                AttentionOutput o = att.forward(dec, enc, mask);
                AttentionGradients g = att.backward(dec, enc, mask, dctx);
                check(failures, "scores", expected.tensor("scores"), o.scores(), tol);
                check(failures, "weights", expected.tensor("weights"), o.weights(), tol);
                check(failures, "context", expected.tensor("context"), o.context(), tol);
                check(failures, "dscores", expected.tensor("dscores"), g.dscores(), tol);
                check(failures, "ddec", expected.tensor("ddec"), g.ddec(), tol);
                check(failures, "denc", expected.tensor("denc"), g.denc(), tol);
                for (String n : cfg.score().weightNames()) check(failures, "d" + n, expected.tensor("d" + n), g.weight(n), tol);
            }
            return failures;
        } catch (Exception | LinkageError e) {
            return List.of("threw " + e);
        }
    }

    private static void check(List<String> failures, String tensor, Tensor ref, Tensor got, double tol) {
        String f = ParityCase.compare(tensor, ref, got, tol);
        if (f != null) failures.add(f);
    }

    private static List<String> names(String resource) throws Exception {
        try (InputStream in = GpuParity.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException(resource + " is not on the class path");
            List<String> names = new ArrayList<>();
            for (String l : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) if (!l.isBlank()) names.add(l.strip());
            return names;
        }
    }

    private static Path dir(String resource) throws Exception {
        URL url = GpuParity.class.getClassLoader().getResource(resource + "/expected.safetensors");
        if (url == null) throw new IllegalStateException(resource + " is not on the class path");
        return Path.of(url.toURI()).getParent();
    }

    private static String line(String suite, String name, String backend, List<String> failures) {
        StringBuilder sb = new StringBuilder("{\"suite\":").append(q(suite)).append(",\"case\":").append(q(name))
                .append(",\"backend\":").append(q(backend)).append(",\"ok\":").append(failures.isEmpty()).append(",\"failures\":[");
        for (int i = 0; i < failures.size(); i++) sb.append(i == 0 ? "" : ",").append(q(failures.get(i)));
        return sb.append("]}").toString();
    }

    static String q(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : String.valueOf(s).toCharArray()) {
            switch (ch) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
                    else sb.append(ch);
                }
            }
        }
        return sb.append('"').toString();
    }
}
