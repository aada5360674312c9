package dev.recur.backend.opencl;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Loads kernel sources from the classpath ({@code kernels/...}) and expands {@code #include "..."} lines
 * textually, so a runtime compiler needs no include path on disk (the kernels may sit inside a jar).
 * An include is resolved relative to the including file first, then to {@code kernels/}; every file is
 * inlined at most once per expansion (the headers have include guards as well).
 */
public final class KernelSources {
    private static final Pattern INCLUDE = Pattern.compile("^\\s*#\\s*include\\s+\"([^\"]+)\"\\s*$");

    private KernelSources() {}

    /** The text of {@code kernels/<path>} with every {@code #include "..."} replaced by the included file. */
    public static String load(String path) {
        StringBuilder out = new StringBuilder();
        expand(normalize(path), out, new HashSet<>());
        return out.toString();
    }

    /** The raw text of {@code kernels/<path>}. */
    public static String raw(String path) {
        String res = "kernels/" + normalize(path);
        try (InputStream in = KernelSources.class.getClassLoader().getResourceAsStream(res)) {
            if (in == null) throw new IllegalArgumentException("kernel source: no classpath resource '" + res + "'");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("kernel source: cannot read '" + res + "'", e);
        }
    }

    private static void expand(String path, StringBuilder out, Set<String> seen) {
        if (!seen.add(path)) return;
        String dir = path.contains("/") ? path.substring(0, path.lastIndexOf('/') + 1) : "";
        for (String line : raw(path).split("\n", -1)) {
            Matcher m = INCLUDE.matcher(line);
            if (m.matches()) {
                String rel = normalize(dir + m.group(1));
                String target = exists(rel) ? rel : normalize(m.group(1));
                expand(target, out, seen);
            } else {
                out.append(line).append('\n');
            }
        }
    }

    private static boolean exists(String path) {
        return KernelSources.class.getClassLoader().getResource("kernels/" + path) != null;
    }

    private static String normalize(String path) {
        java.util.ArrayDeque<String> parts = new java.util.ArrayDeque<>();
        for (String p : path.split("/")) {
            if (p.isEmpty() || p.equals(".")) continue;
            if (p.equals("..")) {
                if (!parts.isEmpty()) parts.removeLast();
            } else {
                parts.addLast(p);
            }
        }
        return String.join("/", parts);
    }
}
