package dev.recur.backend.cuda;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.BackendUnavailableException;
import dev.recur.backend.Backends;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Where CUDA cannot run, the provider says exactly why (the missing library by the file names tried, or no device),
 * and automatic selection passes over it without throwing or printing. Which libraries are missing is found
 * independently of the binding, from the folders {@link CudaLibraries} searches and the dynamic loader's own path,
 * so the test holds on a GPU machine too.
 */
class CudaAvailabilityTest {
    private static final List<CudaLibraries.Spec> LIBRARIES = List.of(CudaLibraries.DRIVER, CudaLibraries.CUBLAS, CudaLibraries.NVRTC);

    @Test
    void probeNamesEveryMissingLibrary() throws Exception {
        Assumptions.assumeTrue(CudaProbe.api().binding().equals("panama"), "the file names below are the Panama binding's");
        BackendProvider.Availability a = Backends.provider("cuda").probe();
        System.out.println("cuda probe: available=" + a.available() + ", " + a.detail());
        List<String> missing = new ArrayList<>();
        CudaLibraries search = CudaLibraries.standard();
        for (CudaLibraries.Spec lib : LIBRARIES) {
            boolean visible = false;
            for (String soname : lib.sonames()) {
                visible |= loaderFinds(soname) || search.folders().stream().anyMatch(d -> Files.exists(d.resolve(soname)));
            }
            String expected = lib.tried() + " not found (" + lib.role() + ")";
            if (!visible) {
                missing.add(lib.tried());
                assertTrue(a.detail().contains(expected), "probe detail should contain '" + expected + "', got: " + a.detail());
            } else {
                assertFalse(a.detail().contains(expected), lib.tried() + " is there, yet the probe says: " + a.detail());
            }
        }
        if (!missing.isEmpty()) assertFalse(a.available(), "available although " + missing + " are missing: " + a.detail());
        assertFalse(a.detail().contains("\n"), "the reason is one line, not a stack trace: " + a.detail());
        assertFalse(a.detail().contains("Exception") || a.detail().contains("\tat "), "the reason holds no stack trace: " + a.detail());
        // The answer is kept: a second probe does not load anything again.
        assertEquals(a, Backends.provider("cuda").probe(), "a second probe");
    }

    @Test
    void deviceNumbersAreAcceptedAndCheckedByName() {
        BackendProvider p = Backends.provider("cuda:1");
        assertEquals("cuda:1", p.name(), "provider name");
        BackendProvider.Availability a = p.probe();
        BackendProvider.Availability zero = Backends.provider("cuda").probe();
        if (!zero.available()) assertEquals(zero, a, "cuda:1 is unavailable for the same reason as cuda");
        else if (CudaProbe.result().devices().size() < 2) assertTrue(a.detail().startsWith("no device cuda:1"), a.detail());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.provider("cuda:x"));
        assertTrue(e.getMessage().contains("'cuda:x'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Backends.provider("cuda:99999999999"));
        assertTrue(e.getMessage().contains("cuda:99999999999"), e.getMessage());
    }

    @Test
    void cudaIsFirstInPreferenceOrder() {
        assertEquals("cuda", Backends.providers().get(0).name(), "first provider");
        assertEquals("reference", Backends.providers().getLast().name(), "last provider");
    }

    @Test
    void openBestFallsThroughWithoutThrowingOrPrinting() {
        BackendProvider.Availability a = CudaBackend.PROVIDER.probe();
        Assumptions.assumeFalse(a.available(), "a CUDA device is present here: " + a.detail());
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream capture = new PrintStream(captured, true, StandardCharsets.UTF_8);
        String chosen;
        String best;
        try {
            System.setOut(capture);
            System.setErr(capture);
            try (Backend b = Backends.openBest()) {
                chosen = b.name();
            }
            best = Backends.bestName();
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        assertNotEquals("cuda", chosen, "openBest() without a CUDA device");
        assertEquals(chosen, best, "bestName() vs the backend openBest() opened");
        assertEquals("", captured.toString(StandardCharsets.UTF_8), "printed while passing over cuda");
    }

    @Test
    void openingUnavailableCudaThrowsTheReason() {
        BackendProvider.Availability a = CudaBackend.PROVIDER.probe();
        Assumptions.assumeFalse(a.available(), "a CUDA device is present here: " + a.detail());
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class, () -> Backends.open("cuda"));
        assertEquals("backend cuda is unavailable: " + a.detail(), e.getMessage(), "Backends.open(\"cuda\")");
        e = assertThrows(BackendUnavailableException.class, CudaBackend.PROVIDER::open);
        assertEquals("backend cuda is unavailable: " + a.detail(), e.getMessage(), "PROVIDER.open()");
    }

    /**
     * The JCuda binding, chosen explicitly (as -Drecur.cuda.binding=jcuda would): each library JCuda's natives need
     * is named when the loader cannot find it, one line, no stack trace.
     */
    @Test
    void jcudaBindingNamesTheLibrariesItsNativesNeed() throws Exception {
        JCudaApi api = new JCudaApi();
        assertEquals("jcuda", api.binding(), "binding");
        String[][] parts = {{"DRIVER", "libcuda.so.1"}, {"NVRTC", "libnvrtc.so.12"}, {"CUBLAS", "libcublas.so.12"}};
        for (String[] p : parts) {
            String why = api.load(CudaApi.Part.valueOf(p[0]));
            System.out.println("jcuda binding, " + p[0] + ": " + (why == null ? "loaded" : why));
            if (!loaderFinds(p[1])) {
                assertTrue(why != null && why.startsWith(p[1] + " not found ("), p[0] + ": " + why);
                assertFalse(why.contains("\n"), "one line: " + why);
            }
            assertEquals(why, api.load(CudaApi.Part.valueOf(p[0])), "the answer is kept for " + p[0]);
        }
    }

    /** JCuda buries the loader's message in a nested error; a transitive library is named when it is the one missing. */
    @Test
    void missingLibraryIsReadFromTheLoaderMessage() {
        UnsatisfiedLinkError driver = new UnsatisfiedLinkError("Error while loading native library \"JCudaDriver-12.6.0-linux-x86_64\"\n"
                + "Stack trace from the attempt to load the library as a resource:\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver-12.6.0-linux-x86_64.so: libcuda.so.1: cannot open shared object file: No such file or directory\n"
                + "\tat java.base/jdk.internal.loader.NativeLibraries.load(Native Method)");
        assertEquals("libcuda.so.1 not found (the NVIDIA driver)",
                JCudaApi.missingLibrary(driver, "libcuda.so.1", "the NVIDIA driver"), "driver missing");

        UnsatisfiedLinkError lt = new UnsatisfiedLinkError("Error while loading native library \"JCublas2-12.6.0-linux-x86_64\"");
        lt.initCause(new UnsatisfiedLinkError("/tmp/libJCublas2-12.6.0-linux-x86_64.so: libcublasLt.so.12: cannot open shared object file: No such file or directory"));
        assertEquals("libcublasLt.so.12 not found (cuBLAS)", JCudaApi.missingLibrary(lt, "libcublas.so.12", "cuBLAS"),
                "a transitive dependency missing");

        NoClassDefFoundError again = new NoClassDefFoundError("Could not initialize class jcuda.nvrtc.JNvrtc");
        String reason = JCudaApi.missingLibrary(again, "libnvrtc.so.12", "NVRTC");
        assertTrue(reason.startsWith("libnvrtc.so.12 not loadable (NVRTC)"), "a second attempt names the expected library: " + reason);
    }

    /**
     * Whether the dynamic loader would find {@code name}: LD_LIBRARY_PATH, the ld.so cache, then the
     * default folders, as ld.so searches.
     */
    static boolean loaderFinds(String name) throws IOException, InterruptedException {
        String ldPath = System.getenv("LD_LIBRARY_PATH");
        if (ldPath != null) {
            for (String d : ldPath.split(File.pathSeparator)) {
                if (!d.isEmpty() && Files.exists(Path.of(d, name))) return true;
            }
        }
        for (String ldconfig : new String[] {"/sbin/ldconfig", "/usr/sbin/ldconfig"}) {
            if (!Files.isExecutable(Path.of(ldconfig))) continue;
            Process p = new ProcessBuilder(ldconfig, "-p").redirectErrorStream(true).start();
            p.getOutputStream().close();
            String cache = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(30, TimeUnit.SECONDS);
            if (cache.lines().anyMatch(l -> l.strip().startsWith(name + " "))) return true;
            break;
        }
        for (String d : new String[] {"/lib", "/usr/lib", "/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}) {
            if (Files.exists(Path.of(d, name))) return true;
        }
        return false;
    }
}
