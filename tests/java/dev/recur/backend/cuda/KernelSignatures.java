package dev.recur.backend.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads the kernel entry points and their parameter kinds out of {@code .cl} and {@code .cu} sources, so
 * tests can hold the OpenCL and CUDA entry points in step without either compiler. It understands what
 * the entry-point files use: comments, line continuations, and function-like macros that expand to
 * {@code KERNEL void name(...)} (one level), which is how the OpenCL GEMM variants are written.
 */
final class KernelSignatures {
    private static final Pattern DEFINE = Pattern.compile("^\\s*#\\s*define\\s+(\\w+)\\(([^)]*)\\)\\s*(.*)$", Pattern.MULTILINE);
    private static final Pattern DIRECTIVE = Pattern.compile("^\\s*#.*$", Pattern.MULTILINE);
    private static final Pattern ENTRY = Pattern.compile("(?:\\bKERNEL|\\b__kernel|extern\\s+\"C\"\\s+__global__)\\s+void\\s+(\\w+)\\s*\\(");

    private KernelSignatures() {}

    /** Kernel name to parameter kinds, over every file with the suffix in {@code dir}; a name defined twice fails. */
    private static final Pattern ENTRY_INCLUDE = Pattern.compile("^\\s*#\\s*include\\s*\"(entry/[^\"]+)\"\\s*$", Pattern.MULTILINE);

    /**
     * The text of a {@code .cl} or {@code .cu} file with its {@code #include "entry/..."} lines replaced by the entry
     * file (in {@code kernels/entry}, next to the file's folder): the entry points each family writes once.
     */
    static String withEntries(Path file) throws IOException {
        String text = Files.readString(file);
        Path kernels = file.toAbsolutePath().getParent().getParent();
        java.util.regex.Matcher m = ENTRY_INCLUDE.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) m.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(Files.readString(kernels.resolve(m.group(1)))));
        m.appendTail(out);
        return out.toString();
    }

    static Map<String, List<PtxEntries.Kind>> ofFolder(Path dir, String suffix) throws IOException {
        Map<String, List<PtxEntries.Kind>> all = new TreeMap<>();
        Map<String, String> where = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().endsWith(suffix)).sorted().toList();
        }
        for (Path f : files) {
            for (Map.Entry<String, List<PtxEntries.Kind>> e : of(withEntries(f), f.getFileName().toString()).entrySet()) {
                String prev = where.put(e.getKey(), f.getFileName().toString());
                if (prev != null) throw new AssertionError("kernel " + e.getKey() + " is defined in both " + prev + " and " + f.getFileName());
                all.put(e.getKey(), e.getValue());
            }
        }
        return all;
    }

    /** Kernel name to parameter kinds in one source text. */
    static Map<String, List<PtxEntries.Kind>> of(String source, String file) {
        Map<String, List<PtxEntries.Kind>> kernels = new LinkedHashMap<>();
        for (Map.Entry<String, String> d : definitions(source).entrySet()) {
            String text = d.getValue();
            int open = text.indexOf('(');
            int close = matching(text, open);
            List<PtxEntries.Kind> kinds = new ArrayList<>();
            for (String p : splitTopLevel(text.substring(open + 1, close))) {
                if (p.isBlank() || p.strip().equals("void")) continue;
                kinds.add(kind(p, d.getKey(), file));
            }
            kernels.put(d.getKey(), kinds);
        }
        return kernels;
    }

    /** Kernel name to its whole definition (signature and body), whitespace collapsed, over a folder. */
    static Map<String, String> definitionsOfFolder(Path dir, String suffix) throws IOException {
        Map<String, String> all = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : s.filter(p -> p.getFileName().toString().endsWith(suffix)).sorted().toList()) {
                all.putAll(definitions(withEntries(f)));
            }
        }
        return all;
    }

    /**
     * Kernel name to its definition from {@code void name(} to the closing brace, after comments are
     * removed, entry-point macros expanded and whitespace collapsed to single spaces (none next to
     * punctuation), so two files that define a kernel alike give equal strings.
     */
    static Map<String, String> definitions(String source) {
        String code = source.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\\n]*", " ").replace("\\\n", " ");
        Map<String, String[]> macros = new LinkedHashMap<>();
        Matcher d = DEFINE.matcher(code);
        while (d.find()) {
            if (d.group(3).contains("KERNEL") || d.group(3).contains("__global__")) {
                macros.put(d.group(1), new String[] {d.group(2), d.group(3)});
            }
        }
        code = DIRECTIVE.matcher(code).replaceAll(" ");
        for (Map.Entry<String, String[]> m : macros.entrySet()) code = expand(code, m.getKey(), m.getValue()[0], m.getValue()[1]);

        Map<String, String> defs = new LinkedHashMap<>();
        Matcher e = ENTRY.matcher(code);
        while (e.find()) {
            int open = e.end() - 1;
            int close = matching(code, open);
            int body = code.indexOf('{', close);
            int end = matchingBrace(code, body);
            String text = "void " + e.group(1) + code.substring(open, end + 1);
            defs.put(e.group(1), text.replaceAll("\\s+", " ").replaceAll(" ?([(){},;*]) ?", "$1").strip());
        }
        return defs;
    }

    private static int matchingBrace(String s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '{') depth++;
            else if (c == '}' && --depth == 0) return i;
        }
        throw new AssertionError("unbalanced braces after: " + s.substring(open, Math.min(s.length(), open + 80)));
    }

    private static PtxEntries.Kind kind(String param, String kernel, String file) {
        if (param.contains("*")) return PtxEntries.Kind.POINTER;
        List<String> words = new ArrayList<>(List.of(param.strip().split("\\s+")));
        words.removeLast(); // the parameter name
        words.removeIf(w -> w.equals("const") || w.equals("GLOBAL") || w.equals("RESTRICT"));
        String type = String.join(" ", words);
        return switch (type) {
            case "int", "uint", "unsigned", "unsigned int" -> PtxEntries.Kind.INT;
            case "float" -> PtxEntries.Kind.FLOAT;
            default -> throw new AssertionError(file + ": kernel " + kernel + ": parameter '" + param.strip()
                    + "' is none of pointer, int or float");
        };
    }

    private static String expand(String code, String name, String params, String body) {
        String[] formals = params.split(",");
        Pattern call = Pattern.compile("\\b" + name + "\\s*\\(");
        StringBuilder out = new StringBuilder();
        int from = 0;
        Matcher m = call.matcher(code);
        while (m.find(from)) {
            int open = m.end() - 1;
            int close = matching(code, open);
            List<String> actuals = splitTopLevel(code.substring(open + 1, close));
            String text = body;
            for (int i = 0; i < formals.length && i < actuals.size(); i++) {
                text = text.replaceAll("\\b" + Pattern.quote(formals[i].strip()) + "\\b", Matcher.quoteReplacement(actuals.get(i).strip()));
            }
            out.append(code, from, m.start()).append(text);
            from = close + 1;
        }
        return out.append(code.substring(from)).toString();
    }

    private static int matching(String s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '(') depth++;
            else if (c == ')' && --depth == 0) return i;
        }
        throw new AssertionError("unbalanced parentheses after: " + s.substring(open, Math.min(s.length(), open + 80)));
    }

    private static List<String> splitTopLevel(String s) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '(') depth++;
            else if (c == ')') depth--;
            else if (c == ',' && depth == 0) {
                parts.add(s.substring(start, i));
                start = i + 1;
            }
        }
        parts.add(s.substring(start));
        return parts;
    }
}
