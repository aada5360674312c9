package dev.recur.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The run-time compile path of the CUDA backend, short of a device: every {@code kernels/cuda} unit, read
 * from the class path with its headers, compiles with NVRTC through the binding the backend uses (the Panama one
 * unless {@code -Drecur.cuda.binding=jcuda}) for sm_75, sm_80 and sm_90 (PTX and CUBIN) without a warning in NVRTC's
 * log, its PTX declares the entry points with the OpenCL twins' parameter kinds, both go through the disk cache,
 * and (where ptxas is installed) the PTX assembles without spills. Needs only NVRTC (no driver, no GPU); skips,
 * naming the files tried, where it is absent, and fails instead under {@code -Precur.nvrtc}'s
 * {@code recur.nvrtc.required=true} (the {@code nvrtc} Maven profile, which supplies NVRTC 13 from Maven Central).
 */
class NvrtcCompileTest {
    private static final int[] ARCHS = {75, 80, 90};
    private static final java.util.Set<String> PTXAS_NOTE = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private static CudaApi api() {
        return CudaProbe.api();
    }

    @BeforeEach
    void needsNvrtc() {
        String reason = api().load(CudaApi.Part.NVRTC);
        if (reason != null && Boolean.getBoolean("recur.nvrtc.required")) {
            throw new AssertionError("recur.nvrtc.required is set, yet NVRTC did not load: " + reason);
        }
        if (reason != null) System.out.println("NvrtcCompileTest skipped: " + reason);
        Assumptions.assumeTrue(reason == null, () -> "skipped: " + reason);
        System.out.println("NvrtcCompileTest: " + api().binding() + " binding, " + CudaProbe.libraries(api()));
    }

    @Test
    void everyUnitCompilesForEachArchThroughTheCache(@TempDir Path tmp) throws Exception {
        NvrtcCompiler compiler = new NvrtcCompiler(api(), new KernelCache(tmp.resolve("cache")));
        System.out.println("NVRTC: " + compiler.version());
        Map<String, List<PtxEntries.Kind>> cl = KernelSignatures.ofFolder(Path.of("kernels/opencl"), ".cl");
        Map<String, CudaKernelSources.Unit> units = CudaKernelSources.load();
        for (int arch : ARCHS) {
            NvrtcCompiler.Target target = compiler.target(arch);
            assertEquals(new NvrtcCompiler.Target(arch, true), target, "target for sm_" + arch);
            for (CudaKernelSources.Unit unit : units.values()) {
                long t0 = System.nanoTime();
                NvrtcCompiler.Compiled c = compiler.compile(unit, target);
                System.out.printf("  %-16s sm_%d  %6d ms  ptx %7d B  cubin %7d B%s%n", unit.name(), arch,
                        (System.nanoTime() - t0) / 1_000_000, c.ptx().length(), c.cubin() == null ? 0 : c.cubin().length,
                        c.log().isEmpty() ? "" : "  log: " + c.log().replace('\n', ' '));
                assertFalse(c.log().toLowerCase(java.util.Locale.ROOT).contains("warning"),
                        unit.name() + " sm_" + arch + ": NVRTC warned:\n" + c.log());
                String ptx = c.ptx();
                assertTrue(ptx.contains(".target sm_" + arch), unit.name() + " for sm_" + arch + ": .target line missing");
                assertTrue(c.cubin() != null && c.cubin().length > 4 && c.cubin()[0] == 0x7f && c.cubin()[1] == 'E'
                        && c.cubin()[2] == 'L' && c.cubin()[3] == 'F', unit.name() + " sm_" + arch + ": the CUBIN is no ELF file");
                Map<String, List<PtxEntries.Kind>> entries = PtxEntries.parse(ptx);
                assertEquals(new TreeSet<>(unit.kernels()), new TreeSet<>(entries.keySet()), unit.name() + " sm_" + arch + ": entry points");
                for (String k : unit.kernels()) {
                    assertEquals(cl.get(k), entries.get(k), unit.name() + " sm_" + arch + ": parameter kinds of " + k + " vs its OpenCL twin");
                }
                assertEquals(ptx, Files.readString(compiler.cacheFile(unit, target, "ptx")), "cached PTX of " + unit.name() + " sm_" + arch);
                assertArrayEquals(c.cubin(), Files.readAllBytes(compiler.cacheFile(unit, target, "cubin")), "cached CUBIN of " + unit.name());
                assemble(tmp, unit.stem() + "-sm_" + arch, ptx, arch, compiler.version());
            }
        }
        // A second request is served from the disk: a marker written into the cached PTX comes back.
        CudaKernelSources.Unit first = units.values().iterator().next();
        NvrtcCompiler.Target t80 = compiler.target(80);
        Path file = compiler.cacheFile(first, t80, "ptx");
        Files.writeString(file, Files.readString(file) + "// from the cache\n");
        assertTrue(compiler.compile(first, t80).ptx().endsWith("// from the cache\n"), "PTX of " + first.name() + " was not read from the cache");
        // Without its CUBIN the entry is incomplete and is compiled again.
        Files.delete(compiler.cacheFile(first, t80, "cubin"));
        assertTrue(!compiler.compile(first, t80).ptx().endsWith("// from the cache\n"), "an entry without its CUBIN was used");

        // A device newer than NVRTC gets PTX for the newest virtual architecture, for the driver to JIT.
        NvrtcCompiler.Target future = compiler.target(10_000);
        assertTrue(!future.cubin() && future.arch() >= 90, "target for a future device: " + future);
        NvrtcCompiler.Compiled jit = compiler.compile(first, future);
        assertTrue(jit.cubin() == null && jit.ptx().contains(".target sm_" + future.arch()), "PTX-only compile for " + future);
    }

    @Test
    void compileErrorCarriesNvrtcLog(@TempDir Path tmp) {
        NvrtcCompiler compiler = new NvrtcCompiler(api(), new KernelCache(tmp));
        var broken = new CudaKernelSources.Unit("broken.cu", "extern \"C\" __global__ void broken(float* x) { x[0] = undefined_name; }\n",
                Map.of(), List.of("broken"));
        CudaKernelCompileException e = assertThrows(CudaKernelCompileException.class, () -> compiler.compile(broken, compiler.target(80)));
        assertTrue(e.getMessage().startsWith("NVRTC (" + compiler.version() + ") could not compile kernels/cuda/broken.cu with --gpu-architecture=sm_80"),
                e.getMessage());
        assertTrue(e.log().contains("undefined_name"), "the log names the bad identifier: " + e.log());
    }

    /** The warning check above can fail: NVRTC reports an unused variable in the log of a successful compile. */
    @Test
    void aWarningReachesTheLog(@TempDir Path tmp) {
        NvrtcCompiler compiler = new NvrtcCompiler(api(), new KernelCache(tmp));
        var warns = new CudaKernelSources.Unit("warns.cu", "extern \"C\" __global__ void warns(float* x) { int unused = 3; x[0] = 1.0f; }\n",
                Map.of(), List.of("warns"));
        NvrtcCompiler.Compiled c = compiler.compile(warns, compiler.target(80));
        assertTrue(c.log().contains("warning") && c.log().contains("unused"), "NVRTC log of an unused variable: '" + c.log() + "'");
    }

    @Test
    void targetIsTheDevicesOwnArchWhenNvrtcKnowsIt() {
        NvrtcCompiler compiler = new NvrtcCompiler(api(), new KernelCache(Path.of("unused")));
        assertEquals(new NvrtcCompiler.Target(80, true), compiler.target(80), "sm_80");
        assertEquals(new NvrtcCompiler.Target(86, true), compiler.target(86), "sm_86");
        assertEquals("--gpu-architecture=sm_86", compiler.target(86).option(), "option for sm_86");
        CudaKernelCompileException e = assertThrows(CudaKernelCompileException.class, () -> compiler.target(10));
        assertTrue(e.getMessage().contains("sm_10 is older than every one"), e.getMessage());
    }

    /**
     * ptxas -v on NVRTC's own PTX, where the toolkit is installed: no spills, no warnings. A ptxas older than NVRTC
     * cannot read its PTX ISA (ptxas 13.0 stops at 9.0; NVRTC 13.1 writes 9.1), so that pairing is left out, saying so.
     */
    private static void assemble(Path tmp, String name, String ptx, int arch, String nvrtcVersion) throws IOException, InterruptedException {
        Path ptxas = null;
        for (String d : new String[] {System.getenv("CUDA_HOME"), "/usr/local/cuda-13.0", "/usr/local/cuda"}) {
            if (d != null && Files.isExecutable(Path.of(d, "bin", "ptxas"))) {
                ptxas = Path.of(d, "bin", "ptxas");
                break;
            }
        }
        if (ptxas == null) return;
        Process v = new ProcessBuilder(ptxas.toString(), "--version").redirectErrorStream(true).start();
        String version = new String(v.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        v.waitFor(1, TimeUnit.MINUTES);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("release (\\d+)\\.(\\d+)").matcher(version);
        java.util.regex.Matcher n = java.util.regex.Pattern.compile("nvrtc-(\\d+)\\.(\\d+)").matcher(nvrtcVersion);
        if (m.find() && n.find()) {
            int ptxasV = Integer.parseInt(m.group(1)) * 100 + Integer.parseInt(m.group(2));
            int nvrtcV = Integer.parseInt(n.group(1)) * 100 + Integer.parseInt(n.group(2));
            if (ptxasV < nvrtcV) {
                if (PTXAS_NOTE.add(ptxas.toString())) {
                    System.out.println("  ptxas " + m.group(1) + "." + m.group(2) + " at " + ptxas + " is older than " + nvrtcVersion
                            + ": its PTX is not assembled again (NVRTC's own CUBIN is checked above)");
                }
                return;
            }
        }
        Path in = Files.writeString(tmp.resolve(name + ".ptx"), ptx);
        Path log = tmp.resolve(name + ".log");
        Process p = new ProcessBuilder(ptxas.toString(), "-arch=sm_" + arch, "-v", "--warn-on-spills",
                "--warn-on-double-precision-use", "--warning-as-error", "-o", tmp.resolve(name + ".cubin").toString(), in.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "ptxas on " + name + " did not finish");
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "ptxas on NVRTC's PTX of " + name + ":\n" + out);
        assertTrue(out.contains(" 0 bytes spill stores, 0 bytes spill loads"), "ptxas report of " + name + ":\n" + out);
    }
}
