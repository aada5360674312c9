package dev.recur.schedule;

import dev.recur.backend.AttentionKernels;
import dev.recur.backend.opencl.KernelSources;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The attention entry points, written once in {@code kernels/entry/attention.h}, are what both
 * {@code kernels/opencl/attention.cl} and {@code kernels/cuda/attention.cu} compile (names, parameter lists, after
 * expanding their includes) and are exactly {@link AttentionKernels#ALL}; the entry file opens with the equations
 * and launch shapes of its kernels. And every family's {@code .cl} and {@code .cu} define the same entry points.
 */
class AttentionKernelsTest {
    private static final Pattern ENTRY = Pattern.compile("KERNEL\\s+void\\s+(\\w+)\\s*\\(([^)]*)\\)");

    static Map<String, String> entries(String source) {
        String code = source.replaceAll("(?s)/\\*.*?\\*/", " ");
        Map<String, String> m = new LinkedHashMap<>();
        Matcher e = ENTRY.matcher(code);
        while (e.find()) m.put(e.group(1), e.group(2).replaceAll("\\s+", " ").strip());
        return m;
    }

    @Test
    void openClAndCudaEntryPointsMatchTheCatalogue() throws IOException {
        Map<String, String> clEntries = entries(KernelSources.load("opencl/attention.cl"));
        Map<String, String> cuEntries = entries(KernelSources.load("cuda/attention.cu"));
        assertEquals(AttentionKernels.ALL, java.util.List.copyOf(clEntries.keySet()), "kernels of attention.cl");
        assertEquals(clEntries, cuEntries, "attention.cu entry points and parameters vs attention.cl");
        String source = Files.readString(Path.of("kernels/entry/attention.h"));
        assertTrue(source.startsWith("/*"), "a kernel file opens with its equations");
        String header = source.substring(0, source.indexOf("*/"));
        for (String k : AttentionKernels.ALL) {
            assertTrue(header.contains(k) && header.contains("grid {"), "header comment names " + k + " and its grid");
        }
    }

    @Test
    void everyFamilyCompilesTheSameEntryPointsForOpenClAndCuda() throws IOException {
        try (Stream<Path> files = Files.list(Path.of("kernels/cuda"))) {
            List<Path> cus = files.filter(f -> f.toString().endsWith(".cu")).sorted().toList();
            assertTrue(cus.size() >= 10, "CUDA entry files found: " + cus);
            for (Path cu : cus) {
                String name = cu.getFileName().toString().replace(".cu", "");
                Map<String, String> cuEntries = entries(KernelSources.load("cuda/" + name + ".cu"));
                assertTrue(!cuEntries.isEmpty(), name + ".cu defines no entry point");
                if (Files.exists(Path.of("kernels/opencl/" + name + ".cl"))) {
                    assertEquals(entries(KernelSources.load("opencl/" + name + ".cl")), cuEntries, name + ": .cu vs .cl entry points");
                }
            }
        }
    }
}
