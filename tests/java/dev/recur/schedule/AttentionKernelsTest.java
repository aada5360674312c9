package dev.recur.schedule;

import dev.recur.backend.AttentionKernels;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The attention entry points are the same in {@code kernels/opencl/attention.cl} and
 * {@code kernels/cuda/attention.cu} (names, parameter lists) and are exactly {@link AttentionKernels#ALL};
 * each file opens with the equations and launch shapes of its kernels.
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
        String cl = Files.readString(Path.of("kernels/opencl/attention.cl"));
        String cu = Files.readString(Path.of("kernels/cuda/attention.cu"));
        Map<String, String> clEntries = entries(cl), cuEntries = entries(cu);
        assertEquals(AttentionKernels.ALL, java.util.List.copyOf(clEntries.keySet()), "kernels in attention.cl");
        assertEquals(clEntries, cuEntries, "attention.cu entry points and parameters vs attention.cl");
        for (String source : new String[] {cl, cu}) {
            assertTrue(source.startsWith("/*"), "a kernel file opens with its equations");
            String header = source.substring(0, source.indexOf("*/"));
            for (String k : AttentionKernels.ALL) {
                assertTrue(header.contains(k) && header.contains("grid {"), "header comment names " + k + " and its grid");
            }
        }
    }
}
