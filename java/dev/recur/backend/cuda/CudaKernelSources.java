package dev.recur.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The CUDA kernel sources as NVRTC sees them: each {@code kernels/cuda/*.cu} entry point with every header
 * it includes (from {@code kernels/cuda}, {@code kernels/entry} and {@code kernels/common}), read from the class path so that a
 * packaged jar carries its kernels. Pure Java: nothing here needs CUDA, so it is tested on any machine.
 */
final class CudaKernelSources {
    static final String CUDA_DIR = "kernels/cuda/";
    static final String COMMON_DIR = "kernels/common/";
    static final String ROOT_DIR = "kernels/";

    /**
     * NVRTC options; the same language flags as native/build-cuda.sh gives nvcc (which also adds
     * {@code -Werror all-warnings}), so the ahead-of-time check covers what NVRTC compiles.
     */
    static final List<String> NVRTC_OPTIONS = List.of("-std=c++17");

    private static final Pattern INCLUDE = Pattern.compile("^\\s*#\\s*include\\s*\"([^\"]+)\"", Pattern.MULTILINE);
    private static final Pattern ENTRY = Pattern.compile(
            "(?:\\bKERNEL|extern\\s+\"C\"\\s+__global__)\\s+void\\s+(\\w+)\\s*\\(");
    private static final Pattern BLOCK_COMMENT = Pattern.compile("/\\*.*?\\*/", Pattern.DOTALL);
    private static final Pattern LINE_COMMENT = Pattern.compile("//[^\\n]*");

    /**
     * One translation unit: a {@code .cu} file and its headers.
     *
     * @param name    file name, e.g. {@code lstm.cu}
     * @param source  its text
     * @param headers include name (as written in {@code #include "..."}) to text, for every header reached
     * @param kernels the {@code extern "C"} entry points it defines, in source order
     */
    record Unit(String name, String source, Map<String, String> headers, List<String> kernels) {
        /** The file name without {@code .cu}. */
        String stem() {
            return name.endsWith(".cu") ? name.substring(0, name.length() - 3) : name;
        }

        /**
         * A key for the compiled form: changes when the source, any header, the options, the NVRTC version or
         * the architecture changes, so a stale PTX is never loaded.
         */
        String hash(List<String> options, String compilerVersion, String arch) {
            try {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                update(md, "recur-cuda-1");
                update(md, compilerVersion);
                update(md, arch);
                for (String o : options) update(md, o);
                update(md, name);
                update(md, source);
                for (Map.Entry<String, String> h : new TreeMap<>(headers).entrySet()) {
                    update(md, h.getKey());
                    update(md, h.getValue());
                }
                return HexFormat.of().formatHex(md.digest(), 0, 8);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("SHA-256 is missing from this JDK", e);
            }
        }

        private static void update(MessageDigest md, String s) {
            md.update(s.getBytes(StandardCharsets.UTF_8));
            md.update((byte) 0);
        }
    }

    private CudaKernelSources() {}

    /** Every {@code .cu} unit on the class path, by file name. */
    static Map<String, Unit> load() {
        return load(CudaKernelSources.class.getClassLoader());
    }

    static Map<String, Unit> load(ClassLoader loader) {
        Map<String, Unit> units = new LinkedHashMap<>();
        for (String file : list(loader, CUDA_DIR, ".cu")) {
            String source = read(loader, CUDA_DIR + file);
            Map<String, String> headers = new TreeMap<>();
            resolveIncludes(loader, CUDA_DIR, file, source, headers);
            // The entry points are in the .cu itself or, written once for OpenCL and CUDA, in kernels/entry/*.h.
            List<String> kernels = new ArrayList<>(entryPoints(source));
            for (String h : headers.values()) kernels.addAll(entryPoints(h));
            units.put(file, new Unit(file, source, Collections.unmodifiableMap(headers), List.copyOf(kernels)));
        }
        if (units.isEmpty()) throw new IllegalStateException("no CUDA kernels found on the class path under " + CUDA_DIR);
        return Collections.unmodifiableMap(units);
    }

    /** Kernel name to the unit defining it; a name defined twice is an error. */
    static Map<String, Unit> byKernel(Map<String, Unit> units) {
        Map<String, Unit> index = new TreeMap<>();
        for (Unit u : units.values()) {
            for (String k : u.kernels()) {
                Unit prev = index.put(k, u);
                if (prev != null) {
                    throw new IllegalStateException("CUDA kernel " + k + " is defined in both " + prev.name() + " and " + u.name());
                }
            }
        }
        return index;
    }

    /** The names of the entry points defined in a source text (comments ignored). */
    static List<String> entryPoints(String source) {
        String code = LINE_COMMENT.matcher(BLOCK_COMMENT.matcher(source).replaceAll(" ")).replaceAll(" ");
        List<String> names = new ArrayList<>();
        Matcher m = ENTRY.matcher(code);
        while (m.find()) names.add(m.group(1));
        return names;
    }

    /**
     * Adds the headers {@code text} includes, recursively. Lookup follows nvcc with
     * {@code -I kernels -I kernels/common -I kernels/cuda}: the including file's folder first, then those.
     */
    private static void resolveIncludes(ClassLoader loader, String dir, String file, String text, Map<String, String> headers) {
        String code = BLOCK_COMMENT.matcher(text).replaceAll(" ");
        Matcher m = INCLUDE.matcher(code);
        while (m.find()) {
            String inc = m.group(1);
            if (headers.containsKey(inc)) continue;
            String found = null;
            String foundDir = null;
            for (String d : new String[] {dir, ROOT_DIR, COMMON_DIR, CUDA_DIR}) {
                String path = normalize(d + inc);
                if (loader.getResource(path) != null) {
                    found = read(loader, path);
                    foundDir = path.substring(0, path.lastIndexOf('/') + 1);
                    break;
                }
            }
            if (found == null) {
                throw new IllegalStateException(dir + file + " includes \"" + inc + "\", which is in none of "
                        + dir + ", " + ROOT_DIR + ", " + COMMON_DIR + ", " + CUDA_DIR + " on the class path");
            }
            headers.put(inc, found);
            resolveIncludes(loader, foundDir, inc, found, headers);
        }
    }

    private static String normalize(String path) {
        List<String> parts = new ArrayList<>();
        for (String p : path.split("/")) {
            if (p.isEmpty() || p.equals(".")) continue;
            if (p.equals("..") && !parts.isEmpty()) parts.removeLast();
            else parts.add(p);
        }
        return String.join("/", parts);
    }

    static String read(ClassLoader loader, String path) {
        try (InputStream in = loader.getResourceAsStream(path)) {
            if (in == null) throw new IllegalStateException("kernel source " + path + " is not on the class path");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read kernel source " + path, e);
        }
    }

    /** File names with the given suffix directly in a class-path folder, from a directory or a jar. */
    static List<String> list(ClassLoader loader, String dir, String suffix) {
        TreeSet<String> names = new TreeSet<>();
        try {
            Enumeration<URL> roots = loader.getResources(dir);
            while (roots.hasMoreElements()) {
                URL url = roots.nextElement();
                switch (url.getProtocol()) {
                    case "file" -> {
                        try (Stream<Path> files = Files.list(Path.of(url.toURI()))) {
                            files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(suffix)).forEach(names::add);
                        }
                    }
                    case "jar" -> {
                        JarURLConnection conn = (JarURLConnection) url.openConnection();
                        conn.setUseCaches(false);
                        try (JarFile jar = conn.getJarFile()) {
                            Enumeration<JarEntry> entries = jar.entries();
                            while (entries.hasMoreElements()) {
                                String n = entries.nextElement().getName();
                                if (n.startsWith(dir) && n.endsWith(suffix) && n.indexOf('/', dir.length()) < 0) {
                                    names.add(n.substring(dir.length()));
                                }
                            }
                        }
                    }
                    default -> throw new IllegalStateException("cannot list kernel sources at " + url
                            + " (expected a folder or a jar on the class path)");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list kernel sources under " + dir, e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException("cannot list kernel sources under " + dir + ": " + e.getMessage(), e);
        }
        return List.copyOf(names);
    }
}
