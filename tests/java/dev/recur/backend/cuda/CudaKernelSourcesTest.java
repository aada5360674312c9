package dev.recur.backend.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How the CUDA backend finds, hashes and caches its kernel sources: everything short of NVRTC itself. */
class CudaKernelSourcesTest {
    private static final Map<String, String> TREE = Map.of(
            "kernels/cuda/alpha.cu", """
                    /* KERNEL void commented_out(int n) is not an entry point. */
                    #include "common/body.h"
                    #include "dialect_cuda.h"
                    KERNEL void alpha_fwd(int n, GLOBAL float* x) { body(GLOBAL_ID(0), n, x); }
                    // KERNEL void also_commented(int n)
                    extern "C" __global__ void alpha_bwd(int n, float* x) { body(0, n, x); }
                    """,
            "kernels/cuda/beta.cu", """
                    #include "common/body.h"
                    KERNEL void beta_fwd(int n, GLOBAL float* x) { body(GLOBAL_ID(0), n, x); }
                    """,
            "kernels/cuda/dialect_cuda.h", "#define CUDA_ONLY 1\n",
            "kernels/common/body.h", "#include \"dialect.h\"\nFN void body(int i, int n, GLOBAL float* x) { if (i < n) x[i] = 0.0f; }\n",
            "kernels/common/dialect.h", "#define KERNEL extern \"C\" __global__\n",
            "kernels/opencl/alpha.cl", "not a CUDA file\n");

    @Test
    void loadsUnitsWithTheirHeadersFromAFolder(@TempDir Path tmp) throws IOException {
        for (Map.Entry<String, String> e : TREE.entrySet()) {
            Path p = tmp.resolve(e.getKey());
            Files.createDirectories(p.getParent());
            Files.writeString(p, e.getValue());
        }
        try (URLClassLoader loader = new URLClassLoader(new URL[] {tmp.toUri().toURL()}, null)) {
            checkTree(CudaKernelSources.load(loader));
        }
    }

    @Test
    void loadsUnitsWithTheirHeadersFromAJar(@TempDir Path tmp) throws IOException {
        Path jar = tmp.resolve("kernels.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
            for (String dir : List.of("kernels/", "kernels/cuda/", "kernels/common/", "kernels/opencl/")) out.putNextEntry(new JarEntry(dir));
            for (Map.Entry<String, String> e : TREE.entrySet()) {
                out.putNextEntry(new JarEntry(e.getKey()));
                out.write(e.getValue().getBytes(StandardCharsets.UTF_8));
            }
        }
        try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            checkTree(CudaKernelSources.load(loader));
        }
    }

    private static void checkTree(Map<String, CudaKernelSources.Unit> units) {
        assertEquals(List.of("alpha.cu", "beta.cu"), List.copyOf(units.keySet()), "units");
        CudaKernelSources.Unit alpha = units.get("alpha.cu");
        assertEquals(List.of("alpha_fwd", "alpha_bwd"), alpha.kernels(), "entry points of alpha.cu");
        assertEquals(List.of("common/body.h", "dialect.h", "dialect_cuda.h"), List.copyOf(alpha.headers().keySet()),
                "headers of alpha.cu, by the names its #include lines use");
        assertEquals(TREE.get("kernels/common/dialect.h"), alpha.headers().get("dialect.h"), "dialect.h text");
        assertEquals("alpha", alpha.stem(), "stem");
        Map<String, CudaKernelSources.Unit> index = CudaKernelSources.byKernel(units);
        assertEquals("beta.cu", index.get("beta_fwd").name(), "unit of beta_fwd");
        assertEquals("alpha.cu", index.get("alpha_bwd").name(), "unit of alpha_bwd");
    }

    @Test
    void missingHeaderIsNamed(@TempDir Path tmp) throws IOException {
        Path cu = Files.createDirectories(tmp.resolve("kernels/cuda")).resolve("gamma.cu");
        Files.writeString(cu, "#include \"common/nowhere.h\"\nKERNEL void gamma(int n) {}\n");
        try (URLClassLoader loader = new URLClassLoader(new URL[] {tmp.toUri().toURL()}, null)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> CudaKernelSources.load(loader));
            assertTrue(e.getMessage().contains("kernels/cuda/gamma.cu includes \"common/nowhere.h\""), e.getMessage());
        }
    }

    @Test
    void kernelDefinedTwiceIsRejected() {
        var a = new CudaKernelSources.Unit("a.cu", "", Map.of(), List.of("k1", "dup"));
        var b = new CudaKernelSources.Unit("b.cu", "", Map.of(), List.of("dup"));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> CudaKernelSources.byKernel(Map.of("a.cu", a, "b.cu", b)));
        assertTrue(e.getMessage().contains("CUDA kernel dup is defined in both"), e.getMessage());
    }

    @Test
    void hashChangesWithEveryInput() {
        var u = new CudaKernelSources.Unit("a.cu", "src", Map.of("h.h", "one"), List.of("k"));
        String base = u.hash(List.of("-std=c++17"), "nvrtc-12.0", "sm_80");
        assertEquals(16, base.length(), "hash length: " + base);
        assertEquals(base, new CudaKernelSources.Unit("a.cu", "src", Map.of("h.h", "one"), List.of("k"))
                .hash(List.of("-std=c++17"), "nvrtc-12.0", "sm_80"), "same inputs");
        assertNotEquals(base, u.hash(List.of("-std=c++17"), "nvrtc-12.0", "sm_90"), "another arch");
        assertNotEquals(base, u.hash(List.of("-std=c++14"), "nvrtc-12.0", "sm_80"), "other options");
        assertNotEquals(base, u.hash(List.of("-std=c++17"), "nvrtc-12.4", "sm_80"), "another NVRTC");
        assertNotEquals(base, new CudaKernelSources.Unit("a.cu", "src2", Map.of("h.h", "one"), List.of("k"))
                .hash(List.of("-std=c++17"), "nvrtc-12.0", "sm_80"), "edited source");
        assertNotEquals(base, new CudaKernelSources.Unit("a.cu", "src", Map.of("h.h", "two"), List.of("k"))
                .hash(List.of("-std=c++17"), "nvrtc-12.0", "sm_80"), "edited header");
    }

    @Test
    void kernelCacheRoundTripsAndNeverThrows(@TempDir Path tmp) throws IOException {
        KernelCache cache = new KernelCache(tmp.resolve("recur/cuda"));
        assertTrue(cache.read("lstm", "0123456789abcdef", "sm_80", "ptx").isEmpty(), "empty cache");
        byte[] ptx = ".version 8.0\n.target sm_80\n".getBytes(StandardCharsets.UTF_8);
        cache.write("lstm", "0123456789abcdef", "sm_80", "ptx", ptx);
        assertEquals(tmp.resolve("recur/cuda/lstm-0123456789abcdef-sm_80.ptx"), cache.file("lstm", "0123456789abcdef", "sm_80", "ptx"), "file");
        assertArrayEquals(ptx, cache.read("lstm", "0123456789abcdef", "sm_80", "ptx").orElseThrow(), "read back");
        assertTrue(cache.read("lstm", "0123456789abcdef", "sm_80", "cubin").isEmpty(), "another form is another file");
        try (var files = Files.list(tmp.resolve("recur/cuda"))) {
            assertEquals(1, files.count(), "no temporary file is left behind");
        }
        Path blocked = Files.writeString(tmp.resolve("a-file"), "x");
        new KernelCache(blocked.resolve("cuda")).write("lstm", "0123456789abcdef", "sm_80", "ptx", ptx); // unwritable: no exception
        assertEquals(Path.of("/c/x"), KernelCache.defaultDir("/c/x", "/xdg", "/home/u"), "RECUR_CUDA_CACHE wins");
        assertEquals(Path.of("/xdg/recur/cuda"), KernelCache.defaultDir(null, "/xdg", "/home/u"), "XDG_CACHE_HOME");
        assertEquals(Path.of("/home/u/.cache/recur/cuda"), KernelCache.defaultDir("", null, "/home/u"), "home");
    }

    @Test
    void ptxEntriesGiveParameterKinds() {
        String ptx = """
                .version 8.0
                .target sm_80
                .address_size 64
                .visible .entry step(
                \t.param .u32 step_param_0,
                \t.param .u64 .ptr .global .align 4 step_param_1,
                \t.param .f32 step_param_2,
                \t.param .u64 step_param_3
                )
                {
                \tret;
                }
                .visible .entry none()
                {
                \tret;
                }
                """;
        Map<String, List<PtxEntries.Kind>> e = PtxEntries.parse(ptx);
        assertEquals(List.of(PtxEntries.Kind.INT, PtxEntries.Kind.POINTER, PtxEntries.Kind.FLOAT, PtxEntries.Kind.POINTER),
                e.get("step"), "kinds of step");
        assertEquals(List.of(), e.get("none"), "kinds of none");
        IllegalStateException bad = assertThrows(IllegalStateException.class,
                () -> PtxEntries.parse(".visible .entry s(\n.param .align 4 .b8 s_param_0[8]\n)\n"));
        assertTrue(bad.getMessage().contains("PTX entry s"), bad.getMessage());
    }

    @Test
    void compileExceptionCarriesTheLog() {
        CudaKernelCompileException e = new CudaKernelCompileException("NVRTC could not compile kernels/cuda/x.cu",
                "x.cu(3): error: identifier \"y\" is undefined\n");
        assertEquals("NVRTC could not compile kernels/cuda/x.cu:\nx.cu(3): error: identifier \"y\" is undefined", e.getMessage(), "message");
        assertEquals("x.cu(3): error: identifier \"y\" is undefined\n", e.log(), "log");
        assertEquals("plain", new CudaKernelCompileException("plain", "").getMessage(), "no log");
    }
}
