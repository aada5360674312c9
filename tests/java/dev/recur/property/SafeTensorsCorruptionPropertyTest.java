package dev.recur.property;

import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.io.SafeTensorsFormatException;
import dev.recur.tensor.Tensor;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.statistics.Statistics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Damaged checkpoints: random valid safetensors files (1–5 tensors of every supported dtype, ranks 0–3,
 * empty dimensions, metadata) are truncated, extended, or have bytes flipped in the header length, the JSON
 * header or the data. Reading must then either succeed with the outcome the damage allows, or throw
 * {@link SafeTensorsFormatException} naming the file — never any other exception:
 * <ul>
 *   <li>a changed length is always refused (the header's offsets must cover the data exactly);</li>
 *   <li>damage confined to the data loads the same names, dtypes and shapes, with every element the damage
 *       did not touch bit-identical (an I64 element pushed past 2^53 is the one allowed refusal);</li>
 *   <li>damage to the header either is refused or yields a self-consistent file (its tensors' byte sizes
 *       add up to the data length).</li>
 * </ul>
 */
class SafeTensorsCorruptionPropertyTest {
    private static Path dir;

    private static synchronized Path dir() {
        if (dir == null) {
            try {
                // Every save syncs to disk; on a RAM file system that costs nothing, which keeps 400 tries fast.
                Path shm = Path.of("/dev/shm");
                dir = Files.isDirectory(shm) && Files.isWritable(shm) ? Files.createTempDirectory(shm, "recur-corrupt")
                        : Files.createTempDirectory("recur-corrupt");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return dir;
    }

    @AfterContainer
    static synchronized void removeDir() throws IOException {
        if (dir == null) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
        dir = null;
    }

    /** One tensor of a generated checkpoint. */
    record Spec(String name, DType dtype, int[] shape) {
        @Override
        public String toString() {
            return name + ":" + dtype + Arrays.toString(shape);
        }
    }

    /** A checkpoint to write: tensors, values from {@code seed}, optional metadata. */
    record Checkpoint(List<Spec> tensors, long seed, boolean metadata) {}

    /** Where a flip lands: 0 = the 8-byte header length, 1 = the JSON header, 2 = the data. */
    record Flip(int region, int offset, int xor) {}

    @Provide
    Arbitrary<Checkpoint> checkpoints() {
        Arbitrary<int[]> shapes = Arbitraries.integers().between(0, 5).array(int[].class).ofMinSize(0).ofMaxSize(3)
                // Mostly non-empty tensors, so the data region is rarely empty.
                .map(s -> {
                    for (int i = 0; i < s.length; i++) if (s[i] == 0 && (i + s.length) % 3 != 0) s[i] = 1 + i;
                    return s;
                });
        Arbitrary<Spec> spec = Combinators.combine(Arbitraries.of("w", "bias_ih_l0", "weight_hh_l1_reverse", "x", "é", "h0"),
                Arbitraries.of(DType.class), shapes).as(Spec::new);
        Arbitrary<List<Spec>> list = spec.list().ofMinSize(1).ofMaxSize(5).uniqueElements(Spec::name);
        return Combinators.combine(list, Arbitraries.longs(), Arbitraries.of(true, false)).as(Checkpoint::new);
    }

    @Provide
    Arbitrary<List<Flip>> flips() {
        Arbitrary<Flip> flip = Combinators.combine(
                Arbitraries.frequency(Tuple.of(1, 0), Tuple.of(4, 1), Tuple.of(4, 2)),
                Arbitraries.integers().between(0, Integer.MAX_VALUE), Arbitraries.integers().between(1, 255)).as(Flip::new);
        return flip.list().ofMinSize(1).ofMaxSize(6);
    }

    /** A checkpoint as written: its bytes and what reading the intact file gives. */
    record Written(byte[] bytes, SafeTensors parsed) {}

    /** Writes the checkpoint with {@link SafeTensors.Writer}, reads it back intact, and removes the file. */
    private static Written write(Checkpoint c) throws IOException {
        SplittableRandom rnd = new SplittableRandom(c.seed());
        SafeTensors.Writer w = SafeTensors.writer();
        for (Spec s : c.tensors()) {
            Tensor t = Tensor.zeros(s.shape());
            double[] d = t.data();
            for (int i = 0; i < d.length; i++) {
                d[i] = switch (s.dtype()) {
                    case F32 -> (float) rnd.nextDouble(-100, 100);
                    case F64 -> rnd.nextDouble(-1e6, 1e6);
                    case I32 -> rnd.nextInt();
                    case I64 -> rnd.nextLong(-(1L << 53), (1L << 53) + 1);
                };
            }
            w.put(s.name(), t, s.dtype());
        }
        if (c.metadata()) w.metadata("cell", "lstm").metadata("note", "seed " + c.seed());
        Path p = Files.createTempFile(dir(), "valid", ".safetensors");
        try {
            w.save(p);
            return new Written(Files.readAllBytes(p), SafeTensors.read(p));
        } finally {
            Files.deleteIfExists(p);
        }
    }

    private static long headerLength(byte[] b) {
        return ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    /** Reads {@code bytes} as a file; only a {@link SafeTensorsFormatException} naming the file may escape. */
    private static SafeTensors readDamaged(byte[] bytes, String what) throws IOException {
        Path p = Files.createTempFile(dir(), "damaged", ".safetensors");
        try {
            Files.write(p, bytes);
            try {
                return SafeTensors.read(p);
            } catch (SafeTensorsFormatException e) {
                if (e.getMessage() == null || !e.getMessage().startsWith(p.toString())) {
                    throw new AssertionError(what + ": the message should start with the file name: " + e.getMessage(), e);
                }
                throw e;
            } catch (Throwable t) {
                throw new AssertionError(what + ": expected a SafeTensorsFormatException or a result, got " + t, t);
            }
        } finally {
            Files.deleteIfExists(p);
        }
    }

    @Property(tries = 200)
    void aChangedLengthIsAlwaysRefused(@ForAll("checkpoints") Checkpoint c, @ForAll boolean extend,
                                       @ForAll @IntRange(min = 0, max = Integer.MAX_VALUE) int amount, @ForAll byte fill)
            throws IOException {
        byte[] valid = write(c).bytes();
        byte[] damaged;
        if (extend) {
            damaged = Arrays.copyOf(valid, valid.length + 1 + amount % 64);
            Arrays.fill(damaged, valid.length, damaged.length, fill);
        } else {
            damaged = Arrays.copyOf(valid, amount % valid.length);
        }
        String what = (extend ? "extended" : "truncated") + " from " + valid.length + " to " + damaged.length + " bytes, "
                + c.tensors();
        try {
            SafeTensors got = readDamaged(damaged, what);
            throw new AssertionError(what + ": loaded " + got.tensors().keySet() + " instead of refusing the file");
        } catch (SafeTensorsFormatException expected) {
            Statistics.label("refused").collect(extend ? "extended" : damaged.length < 8 ? "shorter than 8 bytes"
                    : damaged.length < 8 + headerLength(valid) ? "inside the header" : "inside the data");
        }
    }

    @Property(tries = 200)
    void flippedBytesAreRefusedOrLoadWhatTheDamageAllows(@ForAll("checkpoints") Checkpoint c,
                                                         @ForAll("flips") List<Flip> flips) throws IOException {
        Written file = write(c);
        byte[] valid = file.bytes();
        SafeTensors original = file.parsed();
        long headerLen = headerLength(valid);
        long dataStart = 8 + headerLen;
        byte[] damaged = valid.clone();
        for (Flip f : flips) {
            int region = f.region() == 2 && dataStart == valid.length ? 1 : f.region();
            long start = region == 0 ? 0 : region == 1 ? 8 : dataStart;
            long end = region == 0 ? 8 : region == 1 ? dataStart : valid.length;
            damaged[(int) (start + f.offset() % (end - start))] ^= (byte) f.xor();
        }
        List<Integer> changed = new ArrayList<>();
        for (int i = 0; i < valid.length; i++) if (damaged[i] != valid[i]) changed.add(i);
        boolean dataOnly = changed.stream().allMatch(i -> i >= dataStart);
        String what = "bytes changed at " + changed + " (data starts at " + dataStart + "), " + c.tensors();

        SafeTensors got;
        try {
            got = readDamaged(damaged, what);
        } catch (SafeTensorsFormatException e) {
            if (dataOnly && !i64PushedOutOfRange(original, damaged, dataStart, changed)) {
                throw new AssertionError(what + ": damage confined to the data must load, but: " + e.getMessage());
            }
            Statistics.label("outcome").collect(dataOnly ? "refused: I64 value past 2^53" : "refused: header damaged");
            return;
        }
        if (dataOnly) {
            Statistics.label("outcome").collect(changed.isEmpty() ? "flips cancelled out" : "loaded: data damaged");
            assertSameLayoutAndUntouchedValues(what, original, got, dataStart, changed);
        } else {
            Statistics.label("outcome").collect("loaded: header damage still a valid file");
            long dataLen = damaged.length - 8 - headerLength(damaged);
            long covered = 0;
            for (Map.Entry<String, Tensor> e : got.tensors().entrySet()) {
                covered += (long) e.getValue().size() * got.dtype(e.getKey()).bytes();
            }
            if (covered != dataLen) {
                throw new AssertionError(what + ": loaded tensors covering " + covered + " bytes of a " + dataLen
                        + "-byte data section");
            }
        }
    }

    /** Byte offset of every tensor in the data section (tensors() is in data order). */
    private static long[] offsets(SafeTensors st) {
        long[] off = new long[st.tensors().size() + 1];
        int k = 0;
        for (Map.Entry<String, Tensor> e : st.tensors().entrySet()) {
            off[k + 1] = off[k] + (long) e.getValue().size() * st.dtype(e.getKey()).bytes();
            k++;
        }
        return off;
    }

    private static boolean i64PushedOutOfRange(SafeTensors original, byte[] damaged, long dataStart, List<Integer> changed) {
        long[] off = offsets(original);
        int k = 0;
        for (Map.Entry<String, Tensor> e : original.tensors().entrySet()) {
            if (original.dtype(e.getKey()) == DType.I64) {
                for (int pos : changed) {
                    long rel = pos - dataStart - off[k];
                    if (rel < 0 || rel >= off[k + 1] - off[k]) continue;
                    long v = ByteBuffer.wrap(damaged, (int) (dataStart + off[k] + rel / 8 * 8), 8)
                            .order(ByteOrder.LITTLE_ENDIAN).getLong();
                    if (v > (1L << 53) || v < -(1L << 53)) return true;
                }
            }
            k++;
        }
        return false;
    }

    private static void assertSameLayoutAndUntouchedValues(String what, SafeTensors original, SafeTensors got, long dataStart,
                                                           List<Integer> changed) {
        if (!original.tensors().keySet().equals(got.tensors().keySet())) {
            throw new AssertionError(what + ": names " + got.tensors().keySet() + ", expected " + original.tensors().keySet());
        }
        long[] off = offsets(original);
        int k = 0;
        for (Map.Entry<String, Tensor> e : original.tensors().entrySet()) {
            String name = e.getKey();
            Tensor a = e.getValue(), b = got.tensor(name);
            if (original.dtype(name) != got.dtype(name) || !Arrays.equals(a.shape(), b.shape())) {
                throw new AssertionError(what + ": tensor '" + name + "' is " + got.dtype(name) + Arrays.toString(b.shape())
                        + ", expected " + original.dtype(name) + Arrays.toString(a.shape()));
            }
            int bytes = original.dtype(name).bytes();
            for (int i = 0; i < a.size(); i++) {
                long from = dataStart + off[k] + (long) i * bytes;
                boolean touched = false;
                for (int pos : changed) touched |= pos >= from && pos < from + bytes;
                if (!touched && Double.compare(a.data()[i], b.data()[i]) != 0) {
                    throw new AssertionError(what + ": tensor '" + name + "' element " + i + " was not damaged but reads "
                            + b.data()[i] + " instead of " + a.data()[i]);
                }
            }
            k++;
        }
    }
}
