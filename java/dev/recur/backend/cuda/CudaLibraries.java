package dev.recur.backend.cuda;

import java.io.File;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Where the CUDA libraries are looked for, and in which order, as a pure function of the environment (so the order
 * is tested without any library present). A library is tried by soname, newest first ({@code .so.13}, then
 * {@code .so.12}); for each soname every folder in turn, then the system loader (ld.so's own path and cache).
 *
 * <p>Folders, in order: the system property {@code recur.cuda.libdir} (a path list: a folder of one's own wins),
 * {@code $CUDA_HOME} and {@code $CUDA_PATH} ({@code lib64}, {@code lib}), the entries of {@code LD_LIBRARY_PATH},
 * {@code /usr/local/cuda/lib64}, {@code /usr/local/cuda-13*}{@code /lib64} and {@code /usr/local/cuda-12*}{@code /lib64}
 * (newest first), and NVIDIA's Python wheels ({@code nvidia/cu13/lib}, {@code nvidia/cublas/lib},
 * {@code nvidia/cuda_nvrtc/lib}, …) under the {@code site-packages} of {@code $VIRTUAL_ENV}, {@code $CONDA_PREFIX},
 * {@code /opt/torch}, {@code /usr/local}, {@code /usr} and {@code ~/.local}: a GPU machine with only PyTorch
 * installed has cuBLAS and NVRTC there and nowhere else. Nothing here is architecture-specific.
 */
record CudaLibraries(List<Path> folders) {
    /** The system property naming folders to search first. */
    static final String LIBDIR_PROPERTY = "recur.cuda.libdir";

    /** A library to find: its role in messages, its sonames newest first, and sibling files to load before it. */
    record Spec(String role, List<String> sonames, Function<String, List<String>> siblingPrefixes) {
        /** The names tried, joined for a message. */
        String tried() {
            return String.join(", ", sonames);
        }
    }

    /** NVRTC dlopens its builtins library by name; it must already be loaded when NVRTC lives outside ld.so's path. */
    static final Spec NVRTC = new Spec("NVRTC", List.of("libnvrtc.so.13", "libnvrtc.so.12"),
            soname -> List.of("libnvrtc-builtins.so." + major(soname)));
    /** cuBLAS needs cuBLASLt of the same major version (its DT_NEEDED, found by soname once loaded). */
    static final Spec CUBLAS = new Spec("cuBLAS", List.of("libcublas.so.13", "libcublas.so.12"),
            soname -> List.of("libcublasLt.so." + major(soname)));
    /** The driver comes with the NVIDIA driver install, on the loader's path; a folder of one's own may hold it too. */
    static final Spec DRIVER = new Spec("the NVIDIA driver", List.of("libcuda.so.1"), soname -> List.of());

    /** Where to try one soname: a file in a folder, or the system loader by name ({@code file} null). */
    record Candidate(String soname, Path file, List<Path> siblings) {
        String describe() {
            return file == null ? soname + " (system loader)" : file.toString();
        }
    }

    /** The folders for this process: system property and environment as they are. */
    static CudaLibraries standard() {
        return of(System.getProperty(LIBDIR_PROPERTY), System.getenv(), Path.of(System.getProperty("user.home", "/")));
    }

    /** The folders for a given property value and environment ({@code env} keys as in {@link System#getenv()}). */
    static CudaLibraries of(String libdirProperty, Map<String, String> env, Path home) {
        Set<Path> dirs = new LinkedHashSet<>();
        addPathList(dirs, libdirProperty);
        for (String var : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                dirs.add(Path.of(v, "lib64"));
                dirs.add(Path.of(v, "lib"));
            }
        }
        addPathList(dirs, env.get("LD_LIBRARY_PATH"));
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        for (String major : new String[] {"13", "12"}) {
            for (Path p : globNewestFirst(Path.of("/usr/local"), "cuda-" + major + "*")) dirs.add(p.resolve("lib64"));
        }
        List<Path> roots = new ArrayList<>();
        for (String var : new String[] {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) roots.add(Path.of(v));
        }
        roots.add(Path.of("/opt/torch"));
        roots.add(Path.of("/usr/local"));
        roots.add(Path.of("/usr"));
        roots.add(home.resolve(".local"));
        for (Path root : roots) {
            for (Path py : globNewestFirst(root.resolve("lib"), "python3*")) {
                for (String pk : new String[] {"site-packages", "dist-packages"}) {
                    Path nvidia = py.resolve(pk).resolve("nvidia");
                    // CUDA 13 wheels put every library in nvidia/cu13/lib; CUDA 12 wheels one folder per library.
                    for (String sub : new String[] {"cu13", "cublas", "cuda_nvrtc", "cu12"}) dirs.add(nvidia.resolve(sub).resolve("lib"));
                }
            }
        }
        return new CudaLibraries(List.copyOf(dirs));
    }

    /**
     * Every place to try for {@code spec}, in order: for each soname (newest first) each folder holding that file,
     * then the system loader. {@code exists} decides whether a file is there (tests pass their own).
     */
    List<Candidate> candidates(Spec spec, Predicate<Path> exists) {
        List<Candidate> out = new ArrayList<>();
        for (String soname : spec.sonames()) {
            for (Path dir : folders) {
                Path f = dir.resolve(soname);
                if (!exists.test(f)) continue;
                List<Path> siblings = new ArrayList<>();
                for (String prefix : spec.siblingPrefixes().apply(soname)) siblings.addAll(siblings(dir, prefix, exists));
                out.add(new Candidate(soname, f, List.copyOf(siblings)));
            }
            out.add(new Candidate(soname, null, List.of()));
        }
        return out;
    }

    /** "Not found", naming the file names tried; {@link #searched()} says where, once for every library missing. */
    String notFound(Spec spec) {
        return spec.tried() + " not found (" + spec.role() + ")";
    }

    /** Where {@link #notFound} looked. */
    String searched() {
        return "searched " + folders.size() + " folders and the system loader; -D" + LIBDIR_PROPERTY + "=DIR adds one";
    }

    /** Files named {@code prefix} or {@code prefix.*} in {@code dir}, the exact name first. */
    private static List<Path> siblings(Path dir, String prefix, Predicate<Path> exists) {
        List<Path> found = new ArrayList<>();
        Path exact = dir.resolve(prefix);
        if (exists.test(exact)) found.add(exact);
        else {
            for (Path p : globNewestFirst(dir, prefix + ".*")) if (exists.test(p)) found.add(p);
            if (!found.isEmpty()) return List.of(found.getFirst());
        }
        return found;
    }

    static String major(String soname) {
        int i = soname.lastIndexOf(".so.");
        return i < 0 ? "" : soname.substring(i + 4).split("\\.")[0];
    }

    private static void addPathList(Set<Path> dirs, String list) {
        if (list == null) return;
        for (String d : list.split(File.pathSeparator)) if (!d.isBlank()) dirs.add(Path.of(d.strip()));
    }

    /** Entries of {@code dir} matching {@code glob}, highest version first (by natural order of their numbers). */
    static List<Path> globNewestFirst(Path dir, String glob) {
        if (!Files.isDirectory(dir)) return List.of();
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, glob)) {
            for (Path p : ds) found.add(p);
        } catch (IOException | SecurityException e) {
            return List.of();
        }
        found.sort(Comparator.comparing((Path p) -> versionKey(p.getFileName().toString())).reversed());
        return found;
    }

    /** A sort key comparing the numbers in a name numerically: cuda-12.10 after cuda-12.9. */
    static String versionKey(String name) {
        StringBuilder sb = new StringBuilder();
        for (String part : name.split("(?<=\\D)(?=\\d)|(?<=\\d)(?=\\D)")) {
            if (!part.isEmpty() && Character.isDigit(part.charAt(0))) sb.append(String.format("%010d", Long.parseLong(part.length() > 18 ? part.substring(0, 18) : part)));
            else sb.append(part);
        }
        return sb.toString();
    }
}
