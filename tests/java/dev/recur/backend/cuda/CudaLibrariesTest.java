package dev.recur.backend.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Where the Panama binding looks for NVRTC and cuBLAS, and what it says when they are not there. */
class CudaLibrariesTest {
    @Test
    void ownFolderFirstThenCudaHomeThenLdLibraryPathThenStandardPlaces(@TempDir Path tmp) {
        CudaLibraries l = CudaLibraries.of("/mine/a:/mine/b", Map.of("CUDA_HOME", "/ch", "CUDA_PATH", "/cp",
                "LD_LIBRARY_PATH", "/ld1::/ld2", "VIRTUAL_ENV", tmp.toString()), tmp.resolve("home"));
        List<Path> f = l.folders();
        assertEquals(List.of(Path.of("/mine/a"), Path.of("/mine/b"), Path.of("/ch/lib64"), Path.of("/ch/lib"),
                Path.of("/cp/lib64"), Path.of("/cp/lib"), Path.of("/ld1"), Path.of("/ld2"), Path.of("/usr/local/cuda/lib64")),
                f.subList(0, 9), "the first folders");
    }

    @Test
    void pythonWheelsOfAVenvAreSearchedCuda13First(@TempDir Path venv) throws IOException {
        Path nvidia = Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia"));
        CudaLibraries l = CudaLibraries.of(null, Map.of("VIRTUAL_ENV", venv.toString()), venv.resolve("home"));
        List<Path> wheelDirs = l.folders().stream().filter(p -> p.startsWith(nvidia)).toList();
        assertEquals(List.of(nvidia.resolve("cu13/lib"), nvidia.resolve("cublas/lib"), nvidia.resolve("cuda_nvrtc/lib"),
                nvidia.resolve("cu12/lib")), wheelDirs, "wheel folders of the venv");
    }

    @Test
    void newestSonameFirstInEveryFolderThenTheLoaderWithItsSiblings() {
        CudaLibraries l = new CudaLibraries(List.of(Path.of("/a"), Path.of("/b")));
        Set<Path> present = Set.of(Path.of("/a/libnvrtc.so.12"), Path.of("/b/libnvrtc.so.13"), Path.of("/b/libnvrtc-builtins.so.13.0"),
                Path.of("/a/libnvrtc-builtins.so.12.9"));
        // The builtins are found by listing the folder, which these folders are not: only the exact-name check applies.
        List<CudaLibraries.Candidate> c = l.candidates(CudaLibraries.NVRTC, present::contains);
        assertEquals(List.of("/b/libnvrtc.so.13", "libnvrtc.so.13 (system loader)", "/a/libnvrtc.so.12", "libnvrtc.so.12 (system loader)"),
                c.stream().map(CudaLibraries.Candidate::describe).toList(), "order of attempts");
    }

    @Test
    void siblingsAreTheBuiltinsAndCublasLtOfTheSameMajorVersion(@TempDir Path dir) throws IOException {
        for (String f : new String[] {"libnvrtc.so.13", "libnvrtc-builtins.so.13.0", "libnvrtc-builtins.so.12.9", "libcublas.so.13", "libcublasLt.so.13"}) {
            Files.writeString(dir.resolve(f), "");
        }
        CudaLibraries l = new CudaLibraries(List.of(dir));
        assertEquals(List.of(dir.resolve("libnvrtc-builtins.so.13.0")), l.candidates(CudaLibraries.NVRTC, Files::isRegularFile).getFirst().siblings());
        assertEquals(List.of(dir.resolve("libcublasLt.so.13")), l.candidates(CudaLibraries.CUBLAS, Files::isRegularFile).getFirst().siblings());
    }

    @Test
    void versionsSortNumerically() {
        assertTrue(CudaLibraries.versionKey("cuda-12.10").compareTo(CudaLibraries.versionKey("cuda-12.9")) > 0, "12.10 after 12.9");
        assertTrue(CudaLibraries.versionKey("cuda-13.0").compareTo(CudaLibraries.versionKey("cuda-12.9")) > 0, "13.0 after 12.9");
    }

    /** A real load attempt: a file of the right name that is no library is reported with the loader's reason. */
    @Test
    void aFileThatIsNoLibraryIsNamedWithTheReason(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("libcublas.so.13"), "not an ELF file");
        PanamaCuda api = new PanamaCuda(new CudaLibraries(List.of(dir)));
        String why = api.load(CudaApi.Part.CUBLAS);
        if (why == null) return; // a real cuBLAS on the loader's path was taken after the broken file: nothing to check
        assertTrue(why.startsWith("libcublas.so.13, libcublas.so.12 not found (cuBLAS); not loadable: "), why);
        assertTrue(why.contains(dir.resolve("libcublas.so.13") + ": "), "the broken file is named: " + why);
        assertEquals(why, api.load(CudaApi.Part.CUBLAS), "the answer is kept");
    }
}
