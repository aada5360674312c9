package dev.recur.nn.attention;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.engine.AttentionGradients;
import dev.recur.engine.AttentionOutput;
import dev.recur.engine.AttentionWeights;
import dev.recur.io.SafeTensors;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.recur.nn.attention.AttentionTestSupport.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every backend against PyTorch (float64) on the fixtures of {@code tests/fixtures/make_attention_fixtures.py}:
 * scores, weights, context, dscores, ddec, denc and every weight's gradient, per tensor
 * {@code max|got - ref| <= tol * max(1, max|ref|)} with tol 1e-9 for the float64 reference and 1e-4 for a
 * float32 backend. An unavailable backend is skipped with its reason, except OpenCL under
 * {@code recur.ci=true}, which fails.
 */
class AttentionParityTest {
    static final double REFERENCE_TOLERANCE = 1e-9;
    static final double FLOAT32_TOLERANCE = 1e-4;
    /** One backend per name for the class: opening OpenCL creates a queue and kernel objects each time. */
    private static final Map<String, Backend> OPEN = new java.util.HashMap<>();

    @AfterAll
    static void closeBackends() {
        OPEN.values().forEach(Backend::close);
        OPEN.clear();
    }

    static List<String> caseNames() {
        try (InputStream in = AttentionParityTest.class.getClassLoader().getResourceAsStream("fixtures/attention/cases.txt")) {
            if (in == null) throw new IllegalStateException("fixtures/attention/cases.txt is not on the test classpath");
            List<String> names = new ArrayList<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank()) names.add(line.strip());
            }
            return names;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static Path caseDir(String name) {
        URL url = AttentionParityTest.class.getClassLoader().getResource("fixtures/attention/" + name + "/expected.safetensors");
        if (url == null) throw new IllegalStateException("attention case '" + name + "' is not on the test classpath");
        try {
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The configuration a case's metadata records. */
    static AttentionConfig config(Map<String, String> meta) {
        return new AttentionConfig(AttentionScore.parse(meta.get("score")), Integer.parseInt(meta.get("decoder_size")),
                Integer.parseInt(meta.get("encoder_size")), Integer.parseInt(meta.get("attention_size")));
    }

    static Stream<Arguments> backendsAndCases() {
        List<Arguments> args = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            double tol = p.name().equals("reference") ? REFERENCE_TOLERANCE : FLOAT32_TOLERANCE;
            for (String c : caseNames()) args.add(Arguments.of(p.name(), tol, c));
        }
        return args.stream();
    }

    @ParameterizedTest(name = "{0} (tol {1}) {2}")
    @MethodSource("backendsAndCases")
    void matchesPyTorch(String backendName, double tol, String caseName) throws IOException {
        BackendProvider p = Backends.provider(backendName);
        BackendProvider.Availability a = p.probe();
        if (!a.available()) {
            if (backendName.equals("opencl") && "true".equals(System.getProperty("recur.ci"))) {
                fail("opencl unavailable with recur.ci=true (CI installs PoCL): " + a.detail());
            }
            Assumptions.abort(backendName + " unavailable: " + a.detail());
        }
        Path dir = caseDir(caseName);
        SafeTensors expected = SafeTensors.read(dir.resolve("expected.safetensors"));
        SafeTensors in = SafeTensors.read(dir.resolve("inputs.safetensors"));
        AttentionConfig cfg = config(expected.metadata());
        AttentionWeights w = AttentionWeights.of(cfg, SafeTensors.load(dir.resolve("weights.safetensors")));
        Tensor dec = in.tensor("dec"), enc = in.tensor("enc"), mask = in.tensor("mask"), dctx = in.tensor("dcontext");
        String what = backendName + " " + caseName;
        Backend be = OPEN.computeIfAbsent(backendName, n -> p.open());
        try (Attention att = Attention.create(cfg, be, w)) {
            AttentionOutput o = att.forward(dec, enc, mask);
            AttentionGradients g = att.backward(dec, enc, mask, dctx);
            assertClose(what, "scores", expected.tensor("scores"), o.scores(), tol);
            assertClose(what, "weights", expected.tensor("weights"), o.weights(), tol);
            assertClose(what, "context", expected.tensor("context"), o.context(), tol);
            assertClose(what, "dscores", expected.tensor("dscores"), g.dscores(), tol);
            assertClose(what, "ddec", expected.tensor("ddec"), g.ddec(), tol);
            assertClose(what, "denc", expected.tensor("denc"), g.denc(), tol);
            for (String name : cfg.score().weightNames()) {
                assertClose(what, "d" + name, expected.tensor("d" + name), g.weight(name), tol);
            }
        }
    }

    @Test
    void fixturesCoverEveryScoreMaskedAndUnmaskedAndUnequalWidths() throws IOException {
        java.util.Set<String> seen = new java.util.HashSet<>();
        boolean unequal = false, fullyMaskedRow = false;
        for (String c : caseNames()) {
            SafeTensors e = SafeTensors.read(caseDir(c).resolve("expected.safetensors"));
            AttentionConfig cfg = config(e.metadata());
            boolean masked = false;
            for (String len : e.metadata().get("lengths").split(",")) {
                int n = Integer.parseInt(len);
                masked |= n < Integer.parseInt(e.metadata().get("T"));
                fullyMaskedRow |= n == 0;
            }
            seen.add(cfg.score() + (masked ? " masked" : " unmasked"));
            unequal |= cfg.decoderSize() != cfg.encoderSize();
        }
        for (AttentionScore s : AttentionScore.values()) {
            assertTrue(seen.contains(s + " masked"), "no masked fixture for " + s);
            assertTrue(seen.contains(s + " unmasked"), "no unmasked fixture for " + s);
        }
        assertTrue(unequal, "no fixture with Hd != He");
        assertTrue(fullyMaskedRow, "no fixture with a fully masked row");
        assertEquals(10, caseNames().size(), "fixture count");
    }
}
