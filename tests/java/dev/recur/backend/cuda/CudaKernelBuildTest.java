package dev.recur.backend.cuda;

import dev.recur.backend.Kernels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The CUDA kernels, checked without a GPU: {@code native/build-cuda.sh} compiles every
 * {@code kernels/cuda/*.cu} with nvcc for sm_75, sm_80 and sm_90 and assembles it with {@code ptxas -v};
 * any error, warning, double-precision instruction or register spill fails. Skips only where nvcc is absent.
 * The OpenCL and CUDA entry points are also held in step here (names, parameter kinds, and the whole
 * definition token for token), which needs no compiler at all.
 */
class CudaKernelBuildTest {
    private static final List<String> ARCHS = List.of("sm_75", "sm_80", "sm_90");
    private static final Path ROOT = Path.of(System.getProperty("user.dir")).toAbsolutePath();
    private static final Path SCRIPT = ROOT.resolve("native/build-cuda.sh");
    /**
     * OpenCL kernels of the hand-written GEMM, with no CUDA twin because no CUDA path launches them: the CUDA backend's
     * gemm and gemmStridedBatched go through cuBLAS, and no schedule launches a GEMM kernel by name (checked below).
     */
    private static final Set<String> OPENCL_GEMM = Set.of("gemm_nn", "gemm_nt", "gemm_tn", "gemm_tt", "gemm_transpose",
            "gemm_v4_nn", "gemm_v4_tn");
    /**
     * Optional OpenCL kernels the CUDA backend does not report as supported (8 units per work item, for PoCL, which
     * does not vectorise across work items), so no CUDA path launches them (checked below).
     */
    private static final Set<String> OPENCL_STEP8 = Set.of("lstm_step_fwd8", "lstm_step_bwd8", "gru_step_fwd8", "rnn_step_fwd8");

    /** Exit status and combined output of one run of the build script. */
    private record Run(int exit, String output) {}

    @Test
    void everyKernelCompilesForEveryArchWithoutWarningsOrSpills() throws Exception {
        Path out = buildDir().resolve("cuda");
        Run run = runScript("--out", out.toString());
        assumeNvcc(run);
        if (run.exit() != 0) fail("native/build-cuda.sh exited " + run.exit() + ":\n" + run.output());
        System.out.println(run.output());

        // ptxas reported every entry point of every unit for every architecture.
        Map<String, List<String[]>> rows = new TreeMap<>();
        for (String line : Files.readAllLines(out.resolve("cuda-report.tsv"))) {
            String[] f = line.split("\t");
            rows.computeIfAbsent(f[1], k -> new ArrayList<>()).add(f);
        }
        Map<String, List<PtxEntries.Kind>> cu = KernelSignatures.ofFolder(ROOT.resolve("kernels/cuda"), ".cu");
        assertFalse(cu.isEmpty(), "kernels/cuda defines no kernels");
        for (String kernel : cu.keySet()) {
            Set<String> archs = new TreeSet<>();
            for (String[] f : rows.getOrDefault(kernel, List.of())) {
                archs.add(f[2]);
                assertEquals("0", f[6], "spill stores of " + kernel + " on " + f[2]);
                assertEquals("0", f[7], "spill loads of " + kernel + " on " + f[2]);
                int regs = Integer.parseInt(f[3]);
                assertTrue(regs > 0 && regs <= 255, "registers of " + kernel + " on " + f[2] + ": " + regs);
            }
            assertEquals(new TreeSet<>(ARCHS), archs, "architectures ptxas reported for kernel " + kernel);
        }
        assertEquals(cu.keySet(), rows.keySet(), "kernels in the ptxas report vs entry points in kernels/cuda");

        // The compiler's own signatures (PTX) match what the sources say, so the Java-side index of entry
        // points (CudaKernelSources, used to find a kernel's unit at run time) and the launch argument
        // checks (PtxEntries) agree with nvcc.
        for (String arch : ARCHS) {
            Map<String, List<PtxEntries.Kind>> ptx = new TreeMap<>();
            try (var files = Files.list(out.resolve(arch))) {
                for (Path p : files.filter(p -> p.toString().endsWith(".ptx")).sorted().toList()) {
                    String unit = p.getFileName().toString().replace(".ptx", ".cu");
                    Map<String, List<PtxEntries.Kind>> entries = PtxEntries.parse(Files.readString(p));
                    String source = KernelSignatures.withEntries(ROOT.resolve("kernels/cuda").resolve(unit));
                    assertEquals(new TreeSet<>(entries.keySet()), new TreeSet<>(CudaKernelSources.entryPoints(source)),
                            arch + " " + unit + ": PTX entries vs the entry points CudaKernelSources finds "
                                    + "(write each KERNEL explicitly, not through a macro)");
                    ptx.putAll(entries);
                }
            }
            assertEquals(cu, ptx, arch + ": parameter kinds in PTX vs in kernels/cuda sources");
        }
    }

    @Test
    void everyOpenClKernelHasAnIdenticalCudaTwin() throws IOException {
        Map<String, List<PtxEntries.Kind>> cl = KernelSignatures.ofFolder(ROOT.resolve("kernels/opencl"), ".cl");
        Map<String, List<PtxEntries.Kind>> cu = KernelSignatures.ofFolder(ROOT.resolve("kernels/cuda"), ".cu");
        assertFalse(cl.isEmpty(), "kernels/opencl defines no kernels");
        for (String k : OPENCL_GEMM) {
            assertTrue(cl.containsKey(k), "OPENCL_GEMM lists " + k + ", which kernels/opencl no longer defines");
            assertFalse(cu.containsKey(k), "OPENCL_GEMM lists " + k + ", which now has a CUDA twin");
            assertFalse(Kernels.ALL.contains(k) || Kernels.OPTIONAL.contains(k), k + " is launched by name by the schedule now");
        }
        for (String k : OPENCL_STEP8) {
            assertTrue(cl.containsKey(k), "OPENCL_STEP8 lists " + k + ", which kernels/opencl no longer defines");
            assertFalse(cu.containsKey(k), "OPENCL_STEP8 lists " + k + ", which now has a CUDA twin");
            assertTrue(Kernels.OPTIONAL.contains(k), k + " is no longer optional: CUDA would need a twin");
            assertFalse(CudaBackend.supportsKernel(k), "the CUDA backend reports " + k + " as supported but has no twin");
        }
        // Conversely every optional kernel the CUDA backend says it runs has a twin.
        for (String k : Kernels.OPTIONAL) {
            if (CudaBackend.supportsKernel(k)) assertTrue(cu.containsKey(k), "the CUDA backend supports " + k + ", which kernels/cuda lacks");
        }
        Set<String> onlyCl = new TreeSet<>(cl.keySet());
        onlyCl.removeAll(cu.keySet());
        onlyCl.removeAll(OPENCL_GEMM);
        onlyCl.removeAll(OPENCL_STEP8);
        Set<String> onlyCu = new TreeSet<>(cu.keySet());
        onlyCu.removeAll(cl.keySet());
        assertTrue(onlyCl.isEmpty() && onlyCu.isEmpty(), "OpenCL kernels without a CUDA twin: " + onlyCl
                + "; CUDA kernels without an OpenCL twin: " + onlyCu);
        for (String k : cu.keySet()) {
            assertEquals(cl.get(k), cu.get(k), "parameter kinds of " + k + ": kernels/opencl (expected) vs kernels/cuda (actual)");
        }
        // Beyond names and kinds: the same signature and the same call of the shared body, token for token
        // (the dialect macros make the OpenCL text valid CUDA), so a twin cannot pass arguments in another order.
        Map<String, String> clText = KernelSignatures.definitionsOfFolder(ROOT.resolve("kernels/opencl"), ".cl");
        Map<String, String> cuText = KernelSignatures.definitionsOfFolder(ROOT.resolve("kernels/cuda"), ".cu");
        for (String k : cuText.keySet()) {
            assertEquals(clText.get(k), cuText.get(k), "definition of " + k + ": kernels/opencl (expected) vs kernels/cuda (actual)");
        }
    }

    @Test
    void everyScheduledKernelIsDefinedForCuda() {
        Map<String, CudaKernelSources.Unit> index = CudaKernelSources.byKernel(CudaKernelSources.load());
        Set<String> missing = new TreeSet<>(Kernels.ALL);
        missing.removeAll(index.keySet());
        assertTrue(missing.isEmpty(), "kernels of dev.recur.backend.Kernels.ALL missing from kernels/cuda on the class path: " + missing);
        Set<String> train = new TreeSet<>(dev.recur.backend.TrainKernels.ALL);
        train.removeAll(index.keySet());
        assertTrue(train.isEmpty(), "kernels of dev.recur.backend.TrainKernels.ALL missing from kernels/cuda on the class path: " + train);
    }

    /** The checks themselves can fail: a warning, a double, a system include and a spill are each caught. */
    @Test
    void buildFailsOnWarningDoubleSystemIncludeAndSpill(@TempDir Path tmp) throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Files.writeString(src.resolve("warns.cu"), """
                extern "C" __global__ void warns(float* a) {
                    int unused = 3;
                    a[threadIdx.x] = 1.0f;
                }
                """);
        Files.writeString(src.resolve("doubles.cu"), """
                extern "C" __global__ void doubles(float* a, int n) {
                    int i = blockIdx.x * blockDim.x + threadIdx.x;
                    if (i < n) a[i] = a[i] * 0.1;
                }
                """);
        Files.writeString(src.resolve("includes.cu"), """
                #include <stdint.h>
                extern "C" __global__ void includes(float* a) { a[threadIdx.x] = 0.0f; }
                """);
        Files.writeString(src.resolve("spills.cu"), """
                extern "C" __global__ void spills(float* a) {
                    float r[64];
                    for (int k = 0; k < 64; k++) r[k] = a[k * threadIdx.x];
                    float s = 0.0f;
                    for (int k = 0; k < 64; k++) s += r[k] * r[63 - k] * a[k];
                    for (int k = 0; k < 64; k++) a[k + threadIdx.x] = r[k] * s;
                }
                """);
        Files.writeString(src.resolve("clean.cu"), """
                extern "C" __global__ void clean(float* a, int n) {
                    int i = blockIdx.x * blockDim.x + threadIdx.x;
                    if (i < n) a[i] = a[i] * 0.5f;
                }
                """);
        Run run = runScript("--src", src.toString(), "--out", tmp.resolve("out").toString(), "--arch", "75", "--maxrregcount", "24");
        assumeNvcc(run);
        assertEquals(1, run.exit(), "exit status of a build with bad kernels; output:\n" + run.output());
        String out = run.output();
        assertContains(out, "FAIL: warns.cu sm_75: nvcc failed");
        assertContains(out, "declared but never referenced");
        assertContains(out, "FAIL: doubles.cu sm_75: ptxas failed");
        assertContains(out, "double precision");
        assertContains(out, "FAIL: includes.cu:1: system include");
        assertContains(out, "FAIL: spills.cu sm_75: kernel spills spills registers");
        assertFalse(out.contains("FAIL: clean.cu"), "the clean kernel was flagged:\n" + out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("clean.cu") && l.contains("clean") && l.contains("sm_75")),
                "the clean kernel is missing from the report:\n" + out);
    }

    private static void assertContains(String text, String part) {
        assertTrue(text.contains(part), "expected the build output to contain '" + part + "':\n" + text);
    }

    private static void assumeNvcc(Run run) {
        if (run.exit() == 3) {
            System.out.println("CudaKernelBuildTest skipped: " + run.output().strip());
            Assumptions.abort("nvcc is absent: " + run.output().strip());
        }
    }

    private static Run runScript(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add("bash");
        cmd.add(SCRIPT.toString());
        cmd.addAll(List.of(args));
        Path log = Files.createTempFile("build-cuda", ".log");
        try {
            // Output goes to a file, so a hung compiler cannot block the reader past the timeout.
            Process p = new ProcessBuilder(cmd).directory(ROOT.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            p.getOutputStream().close();
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                fail("native/build-cuda.sh did not finish within 10 minutes:\n" + Files.readString(log));
            }
            return new Run(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** The build folder of this Maven run (target, or target-x with -Drecur.build), from where the test classes are. */
    private static Path buildDir() throws Exception {
        return Path.of(CudaKernelBuildTest.class.getProtectionDomain().getCodeSource().getLocation().toURI()).getParent();
    }
}
