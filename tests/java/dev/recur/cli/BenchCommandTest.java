package dev.recur.cli;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code recur bench} in-process on the reference backend at tiny sizes (no timing is asserted, only consistency). */
class BenchCommandTest {
    private static final Set<String> FIELDS = Set.of("name", "backend", "mode", "ms_median", "ms_min", "ms_max", "gflops",
            "repeats", "device_tensors", "bytes_to_device", "bytes_to_host", "blocking_waits");
    private static final Pattern PAIR = Pattern.compile("\"([a-z_]+)\":(\"[^\"]*\"|-?[0-9][0-9.eE+-]*|true|false|null)");

    /** Parses one flat JSON object of strings, numbers, booleans and nulls, insisting that nothing else is on the line. */
    private static Map<String, String> parseJsonLine(String line) {
        assertTrue(line.startsWith("{") && line.endsWith("}"), "a JSON object: " + line);
        String body = line.substring(1, line.length() - 1);
        Map<String, String> m = new LinkedHashMap<>();
        Matcher mt = PAIR.matcher(body);
        int pos = 0;
        while (mt.find()) {
            assertEquals(pos, mt.start(), "unexpected text in " + line);
            String v = mt.group(2);
            m.put(mt.group(1), v.startsWith("\"") ? v.substring(1, v.length() - 1) : v);
            pos = mt.end();
            if (pos < body.length()) {
                assertEquals(',', body.charAt(pos), "separator in " + line);
                pos++;
            }
        }
        assertEquals(body.length(), pos, "the whole line must be key:value pairs: " + line);
        return m;
    }

    /** GEMM FLOPs written out for the test's configuration, independently of the command's own formula. */
    private static double expectedFlops(String cell, String mode) {
        int t = 3, b = 2, in = 4, h = 5, dirs = 2;
        int g = switch (cell) {
            case "lstm" -> 4;
            case "gru" -> 3;
            default -> 1;
        };
        // Layer 0 sees the input (4 features); layer 1 the concatenated directions (2*5).
        double layer0 = 2.0 * t * b * g * h * in + 2.0 * t * b * g * h * h;
        double layer1 = 2.0 * t * b * g * h * (2 * h) + 2.0 * t * b * g * h * h;
        double fwd = dirs * (layer0 + layer1);
        return mode.equals("fwd_bwd") ? 3 * fwd : fwd;
    }

    @Test
    void jsonLinesCarryEveryFieldAndConsistentThroughput() {
        CliRun r = CliRun.of("bench", "--cell", "lstm,rnn_relu,gru", "--seq-len", "3", "--batch", "2", "--input-size", "4",
                "--hidden-size", "5", "--layers", "2", "--bidirectional", "--mode", "fwd,fwd_bwd", "--backend", "reference",
                "--repeats", "3", "--warmup", "1", "--json");
        assertEquals(0, r.code(), r.toString());
        assertEquals("", r.err(), r.toString());
        String[] lines = r.out().strip().split("\\R");
        assertEquals(6, lines.length, "one line per workload (3 cells x 2 modes): " + r);
        List<String> seen = new ArrayList<>();
        for (String line : lines) {
            Map<String, String> m = parseJsonLine(line);
            assertEquals(FIELDS, m.keySet(), "fields of " + line);
            String cell = m.get("name").substring(0, m.get("name").indexOf("_t"));
            assertEquals(cell + "_t3_b2_i4_h5_l2_bi", m.get("name"), line);
            assertEquals("reference", m.get("backend"), line);
            assertEquals("3", m.get("repeats"), line);
            double median = Double.parseDouble(m.get("ms_median"));
            double min = Double.parseDouble(m.get("ms_min"));
            double max = Double.parseDouble(m.get("ms_max"));
            double gflops = Double.parseDouble(m.get("gflops"));
            assertTrue(min > 0 && min <= median && median <= max, "0 < min <= median <= max: " + line);
            double expected = expectedFlops(cell, m.get("mode")) / (median * 1e6);
            assertEquals(expected, gflops, 1e-9 * expected, "gflops = flops / median time: " + line);
            seen.add(cell + " " + m.get("mode"));
        }
        assertEquals(List.of("lstm fwd", "lstm fwd_bwd", "rnn_relu fwd", "rnn_relu fwd_bwd", "gru fwd", "gru fwd_bwd"), seen);
    }

    @Test
    void tablePrintsAHeaderAndOneRowPerWorkload() {
        CliRun r = CliRun.of("bench", "--cell", "rnn_tanh", "--seq-len", "4", "--batch", "1", "--input-size", "3",
                "--hidden-size", "2", "--mode", "fwd_bwd", "--backend", "reference", "--repeats", "2", "--warmup", "0",
                "--threads", "1");
        assertEquals(0, r.code(), r.toString());
        String[] lines = r.out().strip().split("\\R");
        assertEquals(2, lines.length, r.toString());
        assertTrue(lines[0].matches("workload\\s+backend\\s+mode\\s+ms median\\s+ms min\\s+ms max\\s+GFLOP/s\\s+repeats"),
                lines[0]);
        String[] cols = lines[1].trim().split("\\s+");
        assertEquals(List.of("rnn_tanh_t4_b1_i3_h2", "reference", "fwd_bwd"), List.of(cols[0], cols[1], cols[2]), lines[1]);
        double median = Double.parseDouble(cols[3]), min = Double.parseDouble(cols[4]), max = Double.parseDouble(cols[5]);
        assertTrue(min <= median && median <= max, lines[1]);
        // 3 x (2*T*B*G*H*I + 2*T*B*G*H*H) with G = 1.
        double flops = 3 * (2.0 * 4 * 1 * 2 * 3 + 2.0 * 4 * 1 * 2 * 2);
        double gflops = Double.parseDouble(cols[6]);
        // The table rounds to 2 decimals (and the time to 4), so allow for that rounding.
        assertEquals(flops / (median * 1e6), gflops, 0.006 + 1e-3 * gflops, lines[1]);
        assertEquals("2", cols[7], lines[1]);
    }

    /**
     * Traffic per timed call from the backend's counters: the host-tensor API copies x up and y, h_n, c_n, dx and
     * every gradient down; on device tensors a forward + backward moves nothing and waits once (its finish()).
     */
    @Test
    void jsonReportsTrafficPerCallAndDeviceTensorsMoveNothing() {
        String[] common = {"bench", "--cell", "lstm,gru", "--seq-len", "5", "--batch", "3", "--input-size", "4",
                "--hidden-size", "6", "--bidirectional", "--mode", "fwd,fwd_bwd", "--backend", "cpu", "--repeats", "3",
                "--warmup", "1", "--json"};
        CliRun host = CliRun.of(common);
        assertEquals(0, host.code(), host.toString());
        for (String line : host.out().strip().split("\\R")) {
            Map<String, String> m = parseJsonLine(line);
            assertEquals("false", m.get("device_tensors"), line);
            // x [5,3,4] up, at least y [5,3,12] down, as float32.
            assertTrue(Double.parseDouble(m.get("bytes_to_device")) >= 5 * 3 * 4 * 4, line);
            assertTrue(Double.parseDouble(m.get("bytes_to_host")) >= 5 * 3 * 12 * 4, line);
        }
        String[] dev = java.util.Arrays.copyOf(common, common.length + 1);
        dev[common.length] = "--device-tensors";
        CliRun onDevice = CliRun.of(dev);
        assertEquals(0, onDevice.code(), onDevice.toString());
        String[] lines = onDevice.out().strip().split("\\R");
        assertEquals(4, lines.length, onDevice.toString());
        for (String line : lines) {
            Map<String, String> m = parseJsonLine(line);
            assertEquals(FIELDS, m.keySet(), line);
            assertEquals("true", m.get("device_tensors"), line);
            assertEquals(0.0, Double.parseDouble(m.get("bytes_to_device")), line);
            assertEquals(0.0, Double.parseDouble(m.get("bytes_to_host")), line);
            assertEquals(1.0, Double.parseDouble(m.get("blocking_waits")), line);
        }
    }

    @Test
    void deviceTensorsNeedADeviceAndAnRnn() {
        assertBad(new String[] {"bench", "--cell", "lstm", "--seq-len", "3", "--batch", "2", "--input-size", "4",
                "--hidden-size", "5", "--mode", "fwd", "--backend", "reference", "--device-tensors"},
                "--device-tensors", "reference has no device memory");
        assertBad(new String[] {"bench", "--cell", "attn_dot", "--seq-len", "3", "--batch", "2", "--input-size", "4",
                "--hidden-size", "5", "--mode", "fwd", "--backend", "cpu", "--device-tensors"},
                "--device-tensors", "attention workloads run on host tensors only");
    }

    /** Exit 2, one stderr line naming every fragment, nothing on stdout. */
    private static void assertBad(String[] args, String... fragments) {
        CliRun r = CliRun.of(args);
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.errLines().length, "exactly one line on stderr: " + r);
        assertEquals("", r.out(), r.toString());
        assertTrue(r.err().startsWith("recur bench: "), r.toString());
        for (String f : fragments) assertTrue(r.err().contains(f), "stderr should name '" + f + "': " + r);
    }

    private static String[] args(String... override) {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("--cell", "lstm");
        a.put("--seq-len", "2");
        a.put("--batch", "1");
        a.put("--input-size", "2");
        a.put("--hidden-size", "2");
        a.put("--mode", "fwd");
        a.put("--backend", "reference");
        a.put("--repeats", "1");
        a.put("--warmup", "0");
        for (int i = 0; i < override.length; i += 2) {
            if (override[i + 1] == null) a.remove(override[i]);
            else a.put(override[i], override[i + 1]);
        }
        List<String> out = new ArrayList<>(List.of("bench"));
        a.forEach((k, v) -> {
            out.add(k);
            out.add(v);
        });
        return out.toArray(String[]::new);
    }

    @Test
    void attentionWorkloadsReportTheirScoreAndContextFlops() {
        int u = 3, t = 4, b = 2, h = 5;
        CliRun r = CliRun.of("bench", "--cell", "attn_dot,attn_scaled,attn_general,attn_additive", "--seq-len", "" + t,
                "--dec-len", "" + u, "--batch", "" + b, "--input-size", "1", "--hidden-size", "" + h, "--mode", "fwd,fwd_bwd",
                "--backend", "reference", "--repeats", "3", "--warmup", "1", "--json");
        assertEquals(0, r.code(), r.toString());
        String[] lines = r.out().strip().split("\\R");
        assertEquals(8, lines.length, "one line per workload (4 scores x 2 modes): " + r);
        for (String line : lines) {
            Map<String, String> m = parseJsonLine(line);
            assertEquals(FIELDS, m.keySet(), "fields of " + line);
            String name = m.get("name");
            String score = name.substring("attn_".length(), name.indexOf("_u"));
            assertEquals("attn_" + score + "_u3_t4_b2_h5", name, line);
            double context = 2.0 * u * b * t * h;
            double scores = switch (score) {
                case "dot", "scaled" -> 2.0 * u * b * t * h;
                case "general" -> 2.0 * u * b * h * h + 2.0 * u * b * t * h;
                case "additive" -> 2.0 * t * b * h * h + 2.0 * u * b * h * h + 2.0 * u * b * t * h;
                default -> throw new AssertionError("unexpected score in " + line);
            };
            double flops = (scores + context) * (m.get("mode").equals("fwd_bwd") ? 3 : 1);
            double median = Double.parseDouble(m.get("ms_median"));
            double gflops = Double.parseDouble(m.get("gflops"));
            assertEquals(flops / (median * 1e6), gflops, 1e-9 * Math.max(1, gflops), line);
        }
    }

    @Test
    void warmupSecondsKeepsWarmingUpUntilTheTimeHasPassed() {
        long t0 = System.nanoTime();
        CliRun r = CliRun.of("bench", "--cell", "rnn_tanh", "--seq-len", "2", "--batch", "1", "--input-size", "2",
                "--hidden-size", "2", "--mode", "fwd", "--backend", "reference", "--repeats", "1", "--warmup", "0",
                "--warmup-seconds", "1.0", "--json");
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(0, r.code(), r.toString());
        // One timed run of a 2-step, 2-unit RNN takes microseconds: the command can only have lasted this long warming up.
        assertTrue(seconds >= 1.0, "the command returned after " + seconds + " s, before its 1 s of warmup");
        assertEquals("1", parseJsonLine(r.out().strip()).get("repeats"), r.toString());
    }

    @Test
    void badOptionsExitTwoNamingTheOption() {
        assertEquals(0, CliRun.of(args()).code(), "the base arguments must be valid");
        assertBad(args("--cell", "attn_softmax"), "--cell", "attn_softmax", "attn_additive");
        assertBad(args("--cell", "attn_dot", "--dec-len", "0"), "--dec-len", "got 0");
        assertBad(args("--cell", "transformer"), "--cell", "transformer");
        assertBad(args("--cell", null), "--cell");
        assertBad(args("--mode", "bwd"), "--mode", "bwd");
        assertBad(args("--mode", null), "--mode");
        assertBad(args("--seq-len", "0"), "--seq-len", "got 0");
        assertBad(args("--batch", "-3"), "--batch", "got -3");
        assertBad(args("--hidden-size", "many"), "--hidden-size", "many");
        assertBad(args("--repeats", "0"), "--repeats", "got 0");
        assertBad(args("--warmup", "-1"), "--warmup", "got -1");
        assertBad(args("--warmup-seconds", "-0.5"), "--warmup-seconds", "got -0.5");
        assertBad(args("--warmup-seconds", "NaN"), "--warmup-seconds", "got NaN");
        assertBad(args("--threads", "0"), "--threads", "got 0");
        assertBad(args("--backend", "abacus"), "--backend", "abacus", "reference");
        assertBad(args("--layers", "0"), "--layers", "got 0");
    }

    @Test
    void helpExplainsTheCount() {
        CliRun help = CliRun.of("bench", "--help");
        assertEquals(0, help.code(), help.toString());
        for (String s : List.of("--cell", "--seq-len", "--mode", "--backend", "--repeats", "--warmup", "--threads", "--json",
                "FLOPs count the GEMMs only", "3 x fwd")) {
            assertTrue(help.out().contains(s), "help should mention " + s + ": " + help);
        }
    }
}
