package dev.recur.io;

import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedByInterruptException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class SafeTensorsTest {
    @TempDir
    Path dir;

    // ---------------------------------------------------------------- round trips

    @Test
    void roundTripOfEveryDtypeIsBitExact() throws IOException {
        SplittableRandom rnd = new SplittableRandom(7);
        Tensor f32 = Tensor.zeros(3, 5, 7);
        double[] fd = f32.data();
        for (int i = 0; i < fd.length; i++) {
            float f;
            do {
                f = Float.intBitsToFloat(rnd.nextInt());
            } while (Float.isNaN(f));
            fd[i] = f;
        }
        float[] specialsF = {0f, -0f, Float.MIN_VALUE, -Float.MIN_NORMAL, Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN};
        for (int i = 0; i < specialsF.length; i++) fd[i] = specialsF[i];

        Tensor f64 = Tensor.zeros(4, 9);
        double[] dd = f64.data();
        for (int i = 0; i < dd.length; i++) {
            double d;
            do {
                d = Double.longBitsToDouble(rnd.nextLong());
            } while (Double.isNaN(d));
            dd[i] = d;
        }
        double[] specialsD = {0.0, -0.0, Double.MIN_VALUE, Double.MAX_VALUE, Double.NEGATIVE_INFINITY, Double.NaN, 1.0 / 3.0};
        System.arraycopy(specialsD, 0, dd, 0, specialsD.length);

        Tensor i32 = Tensor.zeros(11);
        double[] id = i32.data();
        for (int i = 0; i < id.length; i++) id[i] = rnd.nextInt();
        id[0] = Integer.MIN_VALUE;
        id[1] = Integer.MAX_VALUE;
        id[2] = -1;

        Tensor i64 = Tensor.zeros(2, 6);
        double[] ld = i64.data();
        for (int i = 0; i < ld.length; i++) ld[i] = rnd.nextLong(-(1L << 53), (1L << 53) + 1);
        ld[0] = -(double) (1L << 53);
        ld[1] = (double) (1L << 53);
        ld[2] = 0;

        Tensor scalar = Tensor.of(new double[] {-2.5});
        Tensor empty = Tensor.zeros(0, 4);

        Path file = dir.resolve("all.safetensors");
        SafeTensors.writer()
                .put("f32", f32)
                .put("f64", f64, DType.F64)
                .put("i32", i32, DType.I32)
                .put("i64", i64, DType.I64)
                .put("scalar", scalar, DType.F64)
                .put("empty", empty, DType.F32)
                .metadata("quote\"and\\back", "line\nbreak, tab\t, unicode \u00e9\u4e2d, control \u0001")
                .metadata("format", "pt")
                .save(file);

        SafeTensors st = SafeTensors.read(file);
        assertEquals(List.of("f32", "f64", "i32", "i64", "scalar", "empty"), new ArrayList<>(st.tensors().keySet()),
                "tensors come back in file order");
        assertEquals(DType.F32, st.dtype("f32"));
        assertEquals(DType.F64, st.dtype("f64"));
        assertEquals(DType.I32, st.dtype("i32"));
        assertEquals(DType.I64, st.dtype("i64"));
        assertEquals(Map.of("quote\"and\\back", "line\nbreak, tab\t, unicode \u00e9\u4e2d, control \u0001", "format", "pt"),
                st.metadata());
        assertBitsEqual("f32", f32, st.tensor("f32"));
        assertBitsEqual("f64", f64, st.tensor("f64"));
        assertBitsEqual("i32", i32, st.tensor("i32"));
        assertBitsEqual("i64", i64, st.tensor("i64"));
        assertBitsEqual("scalar", scalar, st.tensor("scalar"));
        assertArrayEquals(new int[] {0, 4}, st.tensor("empty").shape());
        long headerLen = ByteBuffer.wrap(Files.readAllBytes(file), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLen) % 8, "data starts 8-byte aligned, as the safetensors library writes it");
    }

    @Test
    void float32RoundsToNearestOnWrite() throws IOException {
        Tensor t = Tensor.of(new double[] {0.1, 1.0 / 3.0, 1e-50, 1e300}, 4);
        Path file = dir.resolve("f32.safetensors");
        SafeTensors.writer().put("t", t).save(file);
        double[] got = SafeTensors.load(file).get("t").data();
        double[] want = {(float) 0.1, (float) (1.0 / 3.0), 0.0, Double.POSITIVE_INFINITY};
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], "t[" + i + "]");
    }

    private static void assertBitsEqual(String name, Tensor want, Tensor got) {
        assertArrayEquals(want.shape(), got.shape(), name + ": shape");
        double[] w = want.data(), g = got.data();
        for (int i = 0; i < w.length; i++) {
            if (Double.doubleToLongBits(w[i]) != Double.doubleToLongBits(g[i])) {
                fail(name + "[" + i + "]: expected " + w[i] + " (bits " + Long.toHexString(Double.doubleToRawLongBits(w[i]))
                        + "), got " + g[i] + " (bits " + Long.toHexString(Double.doubleToRawLongBits(g[i])) + ")");
            }
        }
    }

    // ---------------------------------------------------------------- interop with the Python side

    @Test
    void readsFileWrittenByPython() throws IOException {
        Path file = copyResource("fixtures/io/python_dtypes.safetensors");
        SafeTensors st = SafeTensors.read(file);
        // Data order (by decreasing alignment, then name), not the JSON key order (sorted).
        assertEquals(List.of("empty", "f64", "i64", "f32", "i32", "scalar"), new ArrayList<>(st.tensors().keySet()));
        assertEquals(Map.of("format", "pt", "written_by", "make_fixtures.py"), st.metadata());

        Tensor f32 = st.tensor("f32");
        assertEquals(DType.F32, st.dtype("f32"));
        assertArrayEquals(new int[] {2, 4}, f32.shape());
        double[] wantF32 = {0.0, -0.0, 1.5, -2.25, Float.MAX_VALUE, Float.MIN_VALUE, Double.POSITIVE_INFINITY, Double.NaN};
        assertBitsEqual("f32", Tensor.of(wantF32, 2, 4), f32);

        assertEquals(DType.F64, st.dtype("f64"));
        assertBitsEqual("f64", Tensor.of(new double[] {1.0 / 3.0, -1e-300, Math.pow(2, 60), Double.MIN_VALUE, -7.0}, 5, 1),
                st.tensor("f64"));
        assertEquals(DType.I32, st.dtype("i32"));
        assertBitsEqual("i32", Tensor.of(new double[] {Integer.MIN_VALUE, -1, 0, 1, Integer.MAX_VALUE}, 5), st.tensor("i32"));
        assertEquals(DType.I64, st.dtype("i64"));
        assertBitsEqual("i64", Tensor.of(new double[] {-Math.pow(2, 53), -3, 0, Math.pow(2, 53)}, 2, 2), st.tensor("i64"));
        assertArrayEquals(new int[0], st.tensor("scalar").shape());
        assertEquals(2.5, st.tensor("scalar").data()[0]);
        assertArrayEquals(new int[] {0, 3}, st.tensor("empty").shape());
    }

    @Test
    void missingTensorNamesFileAndTensor() throws IOException {
        Path file = copyResource("fixtures/io/python_dtypes.safetensors");
        SafeTensors st = SafeTensors.read(file);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> st.tensor("weight_ih_l0"));
        assertTrue(e.getMessage().contains("weight_ih_l0") && e.getMessage().contains(file.toString()), e.getMessage());
    }

    private Path copyResource(String resource) throws IOException {
        try (InputStream in = getClass().getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IOException("test resource missing: " + resource);
            Path p = dir.resolve(Path.of(resource).getFileName());
            Files.write(p, in.readAllBytes());
            return p;
        }
    }

    // ---------------------------------------------------------------- corrupt files

    /** A file from a header (taken literally) and a data section. */
    private Path raw(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return rawWithLength(name, h.length, h, dataBytes);
    }

    private Path rawWithLength(String name, long declaredHeaderLength, byte[] header, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredHeaderLength).put(header);
        Path p = dir.resolve(name + ".safetensors");
        Files.write(p, b.array());
        return p;
    }

    private static String entry(String name, String dtype, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + "," + end + "]}";
    }

    /** Reading {@code file} fails with a format error whose message contains the file and every fragment. */
    private static SafeTensorsFormatException assertRejected(Path file, String... fragments) {
        SafeTensorsFormatException e = assertThrows(SafeTensorsFormatException.class, () -> SafeTensors.read(file));
        String m = e.getMessage();
        assertTrue(m.contains(file.toString()), "message should name the file: " + m);
        for (String f : fragments) assertTrue(m.contains(f), "message should contain '" + f + "': " + m);
        return e;
    }

    @Test
    void validRawFileLoads() throws IOException {
        // The control for the corruption cases below: the same construction, consistent, loads.
        Path p = raw("ok", "{" + entry("a", "F32", "[2,3]", 0, 24) + "," + entry("b", "I64", "[2]", 24, 40) + "}", 40);
        SafeTensors st = SafeTensors.read(p);
        assertArrayEquals(new int[] {2, 3}, st.tensor("a").shape());
        assertArrayEquals(new int[] {2}, st.tensor("b").shape());
    }

    @Test
    void rejectsTruncatedFiles() throws IOException {
        Path good = dir.resolve("good.safetensors");
        SafeTensors.writer().put("w", Tensor.full(1.5, 4, 4), DType.F64).save(good);
        byte[] all = Files.readAllBytes(good);

        Path cutData = dir.resolve("cut_data.safetensors");
        Files.write(cutData, Arrays.copyOf(all, all.length - 1));
        assertRejected(cutData, "'w'", "run past the end of the data", "truncated");

        Path cutHeader = dir.resolve("cut_header.safetensors");
        Files.write(cutHeader, Arrays.copyOf(all, 20));
        assertRejected(cutHeader, "header length", "runs past the end of the file");

        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, Arrays.copyOf(all, 5));
        assertRejected(tiny, "truncated", "5 bytes");

        Path emptyFile = dir.resolve("empty.safetensors");
        Files.write(emptyFile, new byte[0]);
        assertRejected(emptyFile, "truncated");
    }

    @Test
    void rejectsHeaderLengthOverTheLimitOrNegative() throws IOException {
        byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
        assertRejected(rawWithLength("huge", SafeTensors.MAX_HEADER_BYTES + 1, h, 0), "exceeds the limit");
        assertRejected(rawWithLength("negative", -1L, h, 0), "18446744073709551615", "exceeds the limit");
        assertRejected(rawWithLength("short", 1, h, 0), "too short");
    }

    @Test
    void rejectsInvalidJson() throws IOException {
        assertRejected(raw("notjson", "{\"a\":{\"dtype\":\"F32\",", 0), "not valid JSON");
        assertRejected(raw("garbage", "\u0000\u0001\u0002\u0003", 0), "not valid JSON");
        assertRejected(raw("trailing", "{} x", 0), "not valid JSON", "after the end");
        assertRejected(raw("array", "[1,2]", 0), "not a JSON object");
        assertRejected(raw("dupkey", "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8) + "}", 8),
                "duplicate key \"a\"");
        assertRejected(raw("deep", "[".repeat(100_000), 0), "nesting deeper");
        byte[] badUtf8 = {'{', '"', (byte) 0xC3, '"', ':', '1', '}'};
        assertRejected(rawWithLength("utf8", badUtf8.length, badUtf8, 0), "UTF-8");
    }

    @Test
    void rejectsUnknownDtypeNamingTheTensor() throws IOException {
        assertRejected(raw("f16", "{" + entry("weight_hh_l0", "F16", "[2]", 0, 4) + "}", 4),
                "tensor 'weight_hh_l0'", "unsupported dtype 'F16'");
        assertRejected(raw("nodtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "tensor 'w'", "dtype");
    }

    @Test
    void rejectsOverlappingGapsAndOffsetsPastTheData() throws IOException {
        assertRejected(raw("overlap", "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", 12),
                "tensor 'b'", "overlap tensor 'a'");
        assertRejected(raw("gap", "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 12, 20) + "}", 20),
                "tensor 'b'", "gap of 4 bytes after tensor 'a'");
        assertRejected(raw("gapstart", "{" + entry("a", "F32", "[2]", 8, 16) + "}", 16),
                "tensor 'a'", "gap of 8 bytes after the start of the data");
        assertRejected(raw("past", "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[4]", 8, 24) + "}", 16),
                "tensor 'b'", "run past the end of the data (16 bytes)");
        assertRejected(raw("extra", "{" + entry("a", "F32", "[2]", 0, 8) + "}", 12),
                "4 trailing bytes", "'a'");
        assertRejected(raw("backwards", "{" + entry("a", "F32", "[0]", 8, 0) + "}", 8), "tensor 'a'", "0 <= begin <= end");
        assertRejected(raw("hugeoffset", "{" + entry("a", "F32", "[1]", 0, 4).replace("[0,4]", "[99999999999999999999,4]") + "}", 4),
                "tensor 'a'", "data_offsets");
    }

    @Test
    void rejectsShapeThatDisagreesWithByteLength() throws IOException {
        assertRejected(raw("shape", "{" + entry("bias_ih_l0", "F64", "[3,2]", 0, 40) + "}", 40),
                "tensor 'bias_ih_l0'", "needs 48 bytes", "span 40");
        assertRejected(raw("negdim", "{" + entry("a", "F32", "[-1]", 0, 0) + "}", 0), "tensor 'a'", "dimension 0");
        assertRejected(raw("fracdim", "{" + entry("a", "F32", "[2.5]", 0, 8) + "}", 8), "tensor 'a'", "dimension 0");
        assertRejected(raw("bigshape", "{" + entry("a", "F32", "[100000,100000]", 0, 4) + "}", 4), "tensor 'a'", "more elements");
    }

    @Test
    void rejectsMalformedEntriesAndMetadata() throws IOException {
        assertRejected(raw("extrafield", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
                "tensor 'a'", "unexpected header field 'x'");
        assertRejected(raw("nooffsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "tensor 'a'", "data_offsets");
        assertRejected(raw("meta", "{\"__metadata__\":{\"k\":1}}", 0), "__metadata__", "'k'");
        assertRejected(raw("entry", "{\"a\":[1,2]}", 0), "tensor 'a'", "not a JSON object");
    }

    @Test
    void rejectsI64ValuesThatAreNotExactDoubles() throws IOException {
        byte[] h = ("{" + entry("lengths", "I64", "[2]", 0, 16) + "}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + 16).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).putLong(3).putLong((1L << 53) + 1);
        Path p = dir.resolve("i64.safetensors");
        Files.write(p, b.array());
        assertRejected(p, "tensor 'lengths'", "flat index 1", "2^53");
    }

    @Test
    void randomByteCorruptionEitherLoadsTheSameShapesOrFailsClearly() throws IOException {
        Path good = dir.resolve("victim.safetensors");
        SafeTensors.writer()
                .put("weight_ih_l0", Tensor.full(0.25, 8, 3))
                .put("bias_ih_l0", Tensor.full(-1, 8), DType.F64)
                .put("lengths", Tensor.of(new double[] {3, 1}, 2), DType.I64)
                .put("steps", Tensor.of(new double[] {7}, 1), DType.I32)
                .metadata("format", "pt")
                .save(good);
        byte[] original = Files.readAllBytes(good);
        List<int[]> shapes = SafeTensors.load(good).values().stream().map(Tensor::shape).toList();
        SplittableRandom rnd = new SplittableRandom(20261122);
        Path victim = dir.resolve("corrupt.safetensors");
        int[] outcomes = new int[2]; // loaded, rejected
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int trial = 0; trial < 400; trial++) {
                byte[] bytes = original.clone();
                int kind = rnd.nextInt(4);
                if (kind == 3) {
                    bytes = Arrays.copyOf(bytes, rnd.nextInt(bytes.length));
                } else {
                    // 1..3 random bytes; bias half the hits into the 8-byte length and the header, where parsing lives.
                    int flips = kind + 1;
                    for (int f = 0; f < flips; f++) {
                        int at = rnd.nextBoolean() ? rnd.nextInt(Math.min(bytes.length, 8 + 200)) : rnd.nextInt(bytes.length);
                        bytes[at] = (byte) rnd.nextInt(256);
                    }
                }
                Files.write(victim, bytes);
                try {
                    Map<String, Tensor> got = SafeTensors.load(victim);
                    List<int[]> gotShapes = got.values().stream().map(Tensor::shape).toList();
                    assertEquals(shapes.size(), gotShapes.size(), "trial " + trial + ": tensor count after corruption");
                    for (int i = 0; i < shapes.size(); i++) {
                        assertArrayEquals(shapes.get(i), gotShapes.get(i), "trial " + trial + ": shape of tensor " + i);
                    }
                    outcomes[0]++;
                } catch (SafeTensorsFormatException e) {
                    assertTrue(e.getMessage().contains(victim.toString()), "trial " + trial + ": " + e.getMessage());
                    outcomes[1]++;
                } catch (RuntimeException e) {
                    throw new AssertionError("trial " + trial + ": unexpected " + e, e);
                }
            }
        });
        // Both outcomes must occur, or the corruption is not exercising anything.
        assertTrue(outcomes[0] > 10 && outcomes[1] > 100, "loaded " + outcomes[0] + ", rejected " + outcomes[1]);
    }

    // ---------------------------------------------------------------- atomic save

    @Test
    void failedSaveLeavesThePreviousFileIntact() throws IOException {
        Path file = dir.resolve("ckpt.safetensors");
        SafeTensors.writer().put("w", Tensor.full(2.0, 3)).save(file);
        byte[] before = Files.readAllBytes(file);

        // The bad value sits after 2 MB of good data, so the failure happens in the middle of writing.
        Tensor big = Tensor.full(0.5, 512, 1024);
        Tensor bad = Tensor.of(new double[] {1, 2, 2.5}, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.writer().put("big", big).put("lengths", bad, DType.I32).save(file));
        assertTrue(e.getMessage().contains("'lengths'") && e.getMessage().contains("flat index 2") && e.getMessage().contains("2.5"),
                e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(file), "the previous file must be untouched");
        assertOnlyFile(file);

        // An interrupted save: the channel is closed under the writer, a real I/O failure.
        Thread.currentThread().interrupt();
        try {
            assertThrows(ClosedByInterruptException.class, () -> SafeTensors.writer().put("big", big).save(file));
        } finally {
            Thread.interrupted();
        }
        assertArrayEquals(before, Files.readAllBytes(file), "the previous file must be untouched");
        assertOnlyFile(file);

        // And a successful save does replace it.
        SafeTensors.writer().put("w", Tensor.full(3.0, 2)).save(file);
        assertEquals(3.0, SafeTensors.load(file).get("w").data()[1]);
        assertOnlyFile(file);
    }

    @Test
    void savedFileGetsTheFolderDefaultPermissionsNotTempFilePermissions() throws IOException {
        Assumptions.assumeTrue(dir.getFileSystem().supportedFileAttributeViews().contains("posix"), "POSIX permissions");
        Path plain = Files.createFile(dir.resolve("plain.bin"));
        Path saved = dir.resolve("saved.safetensors");
        SafeTensors.save(saved, Map.of("a", Tensor.zeros(2)));
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(saved));
    }

    @Test
    void saveIntoMissingFolderFailsNamingIt() {
        Path file = dir.resolve("no/such/folder/x.safetensors");
        IOException e = assertThrows(IOException.class, () -> SafeTensors.save(file, Map.of("a", Tensor.zeros(1))));
        assertTrue(e.getMessage().contains("no/such/folder"), e.getMessage());
    }

    private void assertOnlyFile(Path file) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<String> names = s.map(p -> p.getFileName().toString()).filter(n -> n.contains("ckpt")).toList();
            assertEquals(List.of(file.getFileName().toString()), names, "no temporary file may be left behind");
        }
    }

    @Test
    void writerRejectsBadArguments() {
        SafeTensors.Writer w = SafeTensors.writer().put("a", Tensor.zeros(1));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.put("a", Tensor.zeros(2))).getMessage().contains("'a'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.put("__metadata__", Tensor.zeros(1))).getMessage()
                .contains("reserved"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.put("", Tensor.zeros(1))).getMessage().contains("name"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.put("b", null)).getMessage().contains("'b'"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SafeTensors.writer().put("n", Tensor.of(new double[] {Math.pow(2, 53) + 2}, 1), DType.I64)
                        .save(dir.resolve("n.safetensors")));
        assertTrue(e.getMessage().contains("'n'") && e.getMessage().contains("2^53"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("n.safetensors")));
    }
}
