package dev.recur.parity;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.config.CellType;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every backend against PyTorch (float64) on the committed fixtures: forward ({@code y, h_n, c_n}) and
 * backward ({@code dx, dh0, dc0} and every parameter's gradient), per tensor
 * max|got−ref| ≤ tol·max(1, max|ref|).
 *
 * <p>The backends are those {@link Backends#providers()} registers, each with its tolerance from
 * {@link #tolerance}: the float64 reference must agree to 1e-5; a float32 backend gets 1e-4 (float32
 * drifts from float64 by up to ~1.6e-5 relative on T=200 gradients). A registered backend that is
 * unavailable here is skipped with the probe's reason (except OpenCL under {@code CI=true}, which fails).
 */
class PyTorchParityTest {
    /** The reference is float64: anything beyond rounding is a bug. */
    static final double REFERENCE_TOLERANCE = 1e-5;
    /** Device and vector backends compute in float32. */
    static final double FLOAT32_TOLERANCE = 1e-4;

    /** The tolerance for a backend; {@code -Drecur.parity.tolerance.<name>=...} overrides it. */
    static double tolerance(String backend) {
        String override = System.getProperty("recur.parity.tolerance." + backend);
        if (override != null) return Double.parseDouble(override);
        return backend.equals("reference") ? REFERENCE_TOLERANCE : FLOAT32_TOLERANCE;
    }

    static Stream<Arguments> backendsAndCases() {
        List<Arguments> args = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            for (String c : ParityCase.names()) args.add(Arguments.of(p.name(), tolerance(p.name()), c));
        }
        return args.stream();
    }

    @ParameterizedTest(name = "{0} (tol {1}) {2}")
    @MethodSource("backendsAndCases")
    void matchesPyTorch(String backendName, double tol, String caseName) throws IOException {
        BackendProvider.Availability a = Backends.provider(backendName).probe();
        if (!a.available() && backendName.equals("opencl") && "true".equals(System.getProperty("recur.ci"))) {
            // CI installs PoCL, so an OpenCL test that would skip there is a broken setup, not a missing device.
            fail("opencl unavailable under CI=true: " + a.detail());
        }
        Assumptions.assumeTrue(a.available(), () -> backendName + " unavailable: " + a.detail());
        ParityCase pc = ParityCase.load(caseName);
        List<String> failures;
        try (Backend backend = Backends.open(backendName)) {
            failures = pc.check(backend, tol);
        }
        // Every result the fixture holds was compared, and nothing else was produced (check() says so otherwise).
        if (!failures.isEmpty()) {
            fail(backendName + " vs PyTorch on " + caseName + ", " + failures.size() + " problem(s):\n  "
                    + String.join("\n  ", failures));
        }
    }

    @Test
    void fixturesCoverWhatTheIssueAsksFor() throws IOException {
        List<String> names = ParityCase.names();
        assertTrue(names.size() >= 10, "cases: " + names);
        boolean[] cells = new boolean[CellType.values().length];
        boolean proj = false, threeLayers = false, bidi = false, varlen = false, allShorter = false, odd = false,
                batch1 = false, long200 = false;
        for (String n : names) {
            ParityCase pc = ParityCase.load(n);
            var c = pc.config();
            Tensor x = pc.input("x");
            int t = x.dim(0), b = x.dim(1);
            cells[c.cell().ordinal()] = true;
            proj |= c.projSize() > 0;
            threeLayers |= c.numLayers() == 3;
            bidi |= c.bidirectional();
            int[] len = pc.lengths();
            if (len != null) {
                varlen = true;
                allShorter |= java.util.Arrays.stream(len).allMatch(v -> v < t);
            }
            odd |= c.inputSize() == 7 && c.hiddenSize() == 13 && b == 3 && t == 5;
            batch1 |= b == 1;
            long200 |= t == 200;
        }
        for (CellType ct : CellType.values()) assertTrue(cells[ct.ordinal()], "no case for cell " + ct);
        assertTrue(proj && threeLayers && bidi && varlen && allShorter && odd && batch1 && long200,
                "coverage: proj " + proj + ", 3 layers " + threeLayers + ", bidirectional " + bidi + ", varlen " + varlen
                        + ", all shorter than T " + allShorter + ", odd sizes " + odd + ", batch 1 " + batch1 + ", T=200 " + long200);
    }

    @Test
    void comparisonRuleNamesTensorIndexExpectedAndActual() {
        Tensor ref = Tensor.of(new double[] {1, 2, 3, 40, 5, 6}, 2, 3);
        Tensor close = ref.copy();
        close.data()[3] += 3.9e-4; // bound is 1e-5 * 40 = 4e-4
        assertEquals(null, ParityCase.compare("dx", ref, close, 1e-5));
        Tensor off = ref.copy();
        off.data()[4] += 5e-4;
        String m = ParityCase.compare("dx", ref, off, 1e-5);
        assertTrue(m != null && m.startsWith("dx[1, 1]: expected 5.0, got 5.0005"), m);
        Tensor nan = ref.copy();
        nan.data()[0] = Double.NaN;
        assertTrue(ParityCase.compare("y", ref, nan, 1e-5).startsWith("y[0, 0]: expected 1.0, got NaN"));
        assertTrue(ParityCase.compare("y", ref, Tensor.zeros(3, 2), 1e-5).contains("expected shape [2, 3]"));
    }
}
