package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.GruReset;
import dev.recur.config.MergeMode;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnEngine;
import dev.recur.engine.RnnEngineFactory;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnTrace;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Engines;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code recur verify} in-process: on the real backends of this machine, and on backends built for the test
 * around the reference engine that return a wrong number, refuse an option, or throw — to show each is
 * reported as it should be.
 */
class VerifyCommandTest {
    /** Runs {@code verify} with the given providers (null = the real {@link Backends#providers()}). */
    private static CliRun run(List<BackendProvider> providers, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        if (providers != null) ((VerifyCommand) cl.getSubcommands().get("verify").getCommand()).providers = () -> providers;
        String[] all = new String[args.length + 1];
        all[0] = "verify";
        System.arraycopy(args, 0, all, 1, args.length);
        return new CliRun(cl.execute(all), out.toString(), err.toString());
    }

    private static List<String> rows(CliRun r, String backend) {
        List<String> rows = new ArrayList<>();
        for (String l : r.out().split("\\R")) if (l.matches(".*\\S\\s{2,}" + backend + "\\s{2,}.*")) rows.add(l);
        return rows;
    }

    @Test
    void withOnlyTheReferenceThereIsNothingToVerify() {
        CliRun r = run(List.of(ReferenceBackend.PROVIDER));
        assertEquals(0, r.code(), r.toString());
        assertEquals("", r.err(), r.toString());
        assertTrue(r.out().startsWith("verify: no device backend to verify"), r.toString());

        BackendProvider missing = provider("opencl", "no OpenCL platform found", 0);
        CliRun r2 = run(List.of(missing, ReferenceBackend.PROVIDER), "--quick");
        assertEquals(0, r2.code(), r2.toString());
        assertTrue(r2.out().contains("no device backend to verify") && r2.out().contains("opencl unavailable: no OpenCL platform found"),
                r2.toString());
    }

    @Test
    void everyAvailableDeviceBackendPasses() {
        List<String> available = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            if (!p.name().equals("reference") && p.probe().available()) available.add(p.name());
        }
        // CI installs PoCL: there, a missing OpenCL is a broken setup, not a reason to verify nothing.
        if ("true".equalsIgnoreCase(System.getProperty("recur.ci", "").trim())) {
            assertTrue(available.contains("opencl"), "recur.ci=true requires the opencl backend to be available");
        }
        CliRun r = run(null);
        if (available.isEmpty()) {
            assertEquals(0, r.code(), r.toString());
            assertTrue(r.out().startsWith("verify: no device backend to verify"), r.toString());
            return;
        }
        assertEquals(0, r.code(), r.toString());
        assertFalse(r.out().contains("FAIL") || r.out().contains("ERROR"), r.toString());
        int cases = VerifyCommand.cases(false).size();
        for (String name : available) {
            List<String> rows = rows(r, name);
            long configs = rows.stream().map(l -> l.substring(0, l.indexOf("  "))).distinct().count();
            assertEquals(cases, configs, "every configuration has rows for " + name);
            assertTrue(rows.stream().allMatch(l -> l.endsWith("  pass") || l.contains("  unsupported: ")), r.toString());
            assertTrue(r.out().contains("verify: " + name + ": "), r.toString());
        }
        assertTrue(r.out().strip().endsWith("verify: PASSED"), r.toString());
    }

    @Test
    void aWrongNumberFailsNamingTheTensorAndIndex() {
        // Off by 1e-3 in y[0, 0, 0] only: y and y/train fail, the states and gradients still pass.
        CliRun r = run(List.of(ReferenceBackend.PROVIDER, provider("skewed", null, 1e-3)), "--quick");
        assertEquals(1, r.code(), r.toString());
        List<String> rows = rows(r, "skewed");
        assertFalse(rows.isEmpty(), r.toString());
        for (String row : rows) {
            String tensor = row.split("\\s{2,}")[2];
            if (tensor.equals("y") || tensor.equals("y/train")) {
                assertTrue(row.contains("FAIL: worst at [0, 0, 0]: expected "), row);
                assertTrue(row.contains("1.000e-03"), "max abs err 1e-3: " + row);
            } else {
                assertTrue(row.endsWith("  pass"), row);
            }
        }
        int configs = VerifyCommand.cases(true).size();
        assertEquals(2L * configs, rows.stream().filter(l -> l.contains("FAIL")).count(), r.toString());
        assertTrue(r.out().contains("verify: skewed: ") && r.out().contains(" " + 2 * configs + " failed"), r.toString());
        assertTrue(r.out().strip().endsWith("verify: FAILED"), r.toString());

        // Below the tolerance, the same skew passes; a tighter --tolerance catches it again.
        BackendProvider tiny = provider("tiny", null, 1e-6);
        assertEquals(0, run(List.of(tiny), "--quick").code());
        CliRun tight = run(List.of(tiny), "--quick", "--tolerance", "1e-7", "--failures-only");
        assertEquals(1, tight.code(), tight.toString());
        assertTrue(rows(tight, "tiny").stream().allMatch(l -> l.contains("FAIL")), "--failures-only: " + tight);
    }

    @Test
    void anUnsupportedOptionIsReportedAndFailsOnlyWhenStrict() {
        BackendProvider noPeephole = provider("nopeep", RnnConfig::peephole, null, 0);
        CliRun r = run(List.of(noPeephole), "--quick");
        assertEquals(0, r.code(), r.toString());
        List<String> unsupported = rows(r, "nopeep").stream().filter(l -> l.contains("unsupported")).toList();
        long peepholeCases = VerifyCommand.cases(true).stream().filter(c -> c.config().peephole()).count();
        assertTrue(peepholeCases > 0);
        assertEquals(peepholeCases, unsupported.size(), r.toString());
        assertTrue(unsupported.get(0).contains("unsupported: peephole: not on this test backend"), r.toString());
        assertTrue(r.out().contains(peepholeCases + " unsupported"), r.toString());

        CliRun strict = run(List.of(noPeephole), "--quick", "--strict");
        assertEquals(1, strict.code(), strict.toString());
        assertTrue(strict.out().strip().endsWith("verify: FAILED (strict)"), strict.toString());
    }

    @Test
    void aBackendThatThrowsIsAnErrorNotACrash() {
        BackendProvider broken = new BackendProvider() {
            @Override
            public String name() {
                return "broken";
            }

            @Override
            public Availability probe() {
                return Availability.yes("test backend whose engine always fails");
            }

            @Override
            public Backend open() {
                return new TestBackend("broken", cfg -> false, 0) {
                    @Override
                    public RnnEngine createRnnEngine(RnnConfig config) {
                        throw new IllegalStateException("kernel launch failed: CL_OUT_OF_RESOURCES");
                    }
                };
            }
        };
        CliRun r = run(List.of(broken), "--quick");
        assertEquals(1, r.code(), r.toString());
        List<String> rows = rows(r, "broken");
        assertEquals(VerifyCommand.cases(true).size(), rows.size(), r.toString());
        assertTrue(rows.stream().allMatch(l -> l.contains("ERROR: java.lang.IllegalStateException: kernel launch failed")),
                r.toString());
    }

    @Test
    void badOptionsExitTwo() {
        BackendProvider missing = provider("opencl", "no OpenCL platform found", 0);
        for (String[] args : List.of(
                new String[] {"--backend", "reference"}, new String[] {"--backend", "abacus"},
                new String[] {"--backend", "opencl"}, new String[] {"--tolerance", "0"},
                new String[] {"--tolerance", "-1e-4"}, new String[] {"--frobnicate"})) {
            CliRun r = run(List.of(missing, ReferenceBackend.PROVIDER), args);
            assertEquals(2, r.code(), Arrays.toString(args) + ": " + r);
            assertEquals(1, r.errLines().length, r.toString());
            assertTrue(r.err().startsWith("recur verify: ") && r.err().contains(args[0]), r.toString());
        }
        CliRun r = run(List.of(missing, ReferenceBackend.PROVIDER), "--backend", "opencl");
        assertTrue(r.err().contains("unavailable here: no OpenCL platform found"), r.toString());
        CliRun ref = run(List.of(missing, ReferenceBackend.PROVIDER), "--backend", "reference");
        assertTrue(ref.err().contains("verified against"), ref.toString());
    }

    @Test
    void theConfigurationListCoversEveryCellAndOption() {
        for (boolean quick : new boolean[] {false, true}) {
            List<VerifyCommand.Case> cases = VerifyCommand.cases(quick);
            String which = quick ? "--quick" : "full";
            Set<CellType> cells = EnumSet.noneOf(CellType.class);
            Set<MergeMode> merges = EnumSet.noneOf(MergeMode.class);
            Set<Integer> layers = new java.util.TreeSet<>();
            for (VerifyCommand.Case c : cases) {
                cells.add(c.config().cell());
                if (c.config().bidirectional()) merges.add(c.config().merge());
                layers.add(c.config().numLayers());
            }
            assertEquals(EnumSet.allOf(CellType.class), cells, which + " cells");
            assertTrue(has(cases, c -> c.projSize() > 0), which + " projection");
            assertTrue(has(cases, RnnConfig::peephole), which + " peephole");
            assertTrue(has(cases, RnnConfig::coupledGate), which + " coupled gate");
            assertTrue(has(cases, c -> c.layerNorm() && c.cell() == CellType.LSTM), which + " LSTM layer norm");
            assertTrue(has(cases, c -> c.cell() == CellType.GRU && c.gruReset() == GruReset.BEFORE), which + " GRU reset-before");
            assertTrue(has(cases, c -> c.cell() == CellType.GRU && c.gruReset() == GruReset.AFTER), which + " GRU reset-after");
            assertTrue(has(cases, c -> c.inputDropout() > 0) && has(cases, c -> c.recurrentDropout() > 0)
                    && has(cases, c -> c.dropout() > 0), which + " all three dropouts");
            assertTrue(has(cases, RnnConfig::residual), which + " residual");
            assertTrue(cases.stream().anyMatch(VerifyCommand.Case::varLengths), which + " variable lengths");
            assertTrue(layers.contains(1) && layers.contains(2), which + " layers " + layers);
            if (!quick) {
                assertEquals(EnumSet.allOf(MergeMode.class), merges, "every merge mode");
                assertTrue(layers.contains(3), "3 layers");
                assertTrue(has(cases, c -> c.cell() == CellType.GRU && c.layerNorm()), "GRU layer norm");
                assertTrue(has(cases, c -> !c.bias()), "no bias");
                assertTrue(has(cases, RnnConfig::batchFirst), "batch-first");
                for (CellType cell : CellType.values()) {
                    for (MergeMode m : MergeMode.values()) {
                        assertTrue(has(cases, c -> c.cell() == cell && c.bidirectional() && c.merge() == m), cell + " " + m);
                    }
                }
            }
            assertEquals(cases.size(), cases.stream().map(VerifyCommand.Case::name).distinct().count(), which + " unique names");
        }
    }

    private static boolean has(List<VerifyCommand.Case> cases, Predicate<RnnConfig> p) {
        return cases.stream().anyMatch(c -> p.test(c.config()));
    }

    // ------------------------------------------------------------------ test backends around the reference engine

    /** An available test backend that is off by {@code skew} in one element of y, or an unavailable one. */
    private static BackendProvider provider(String name, String unavailable, double skew) {
        return provider(name, c -> false, unavailable, skew);
    }

    /**
     * A provider of {@link TestBackend}: unavailable with the given reason when {@code unavailable} is set;
     * refusing configurations matching {@code refuse}; adding {@code skew} to {@code y[0, 0, 0]}.
     */
    private static BackendProvider provider(String name, Predicate<RnnConfig> refuse, String unavailable, double skew) {
        return new BackendProvider() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Availability probe() {
                return unavailable != null ? Availability.no(unavailable) : Availability.yes("test backend around the reference");
            }

            @Override
            public Backend open() {
                return new TestBackend(name, refuse, skew);
            }
        };
    }

    /** The reference engine, with an optional refusal and an optional error in one output element. */
    private static class TestBackend implements Backend, RnnEngineFactory {
        private final String name;
        private final Predicate<RnnConfig> refuse;
        private final double skew;
        private final Backend inner = ReferenceBackend.PROVIDER.open();

        TestBackend(String name, Predicate<RnnConfig> refuse, double skew) {
            this.name = name;
            this.refuse = refuse;
            this.skew = skew;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public String deviceName() {
            return "test";
        }

        @Override
        public RnnEngine createRnnEngine(RnnConfig config) {
            if (refuse.test(config)) throw new UnsupportedOperationException("peephole: not on this test backend");
            RnnEngine e = Engines.rnn(inner, config);
            return new RnnEngine() {
                @Override
                public void setWeights(RnnWeights weights) {
                    e.setWeights(weights);
                }

                @Override
                public RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed) {
                    RnnOutput o = e.forward(x, h0, c0, lengths, training, seed);
                    o.y().data()[0] += skew;
                    return o;
                }

                @Override
                public RnnGradients backward(RnnTrace trace, Tensor dy, Tensor dhN, Tensor dcN) {
                    return e.backward(trace, dy, dhN, dcN);
                }

                @Override
                public void close() {
                    e.close();
                }
            };
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
