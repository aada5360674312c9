package dev.recur.io;

import dev.recur.tensor.Tensor;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and writes <a href="https://github.com/huggingface/safetensors">safetensors</a> files, the checkpoint
 * format PyTorch users exchange {@code state_dict}s in:
 *
 * <pre>
 * [8 bytes: header length N, unsigned little-endian]
 * [N bytes: UTF-8 JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *                       "__metadata__": {"key": "value"}}]   (optionally padded with spaces)
 * [data: every tensor's elements, row-major, little-endian; offsets relative to the data start]
 * </pre>
 *
 * <p>Reading is strict: a truncated file, a header that is too long or not JSON, an unknown dtype, offsets
 * that overlap, leave gaps or run past the data, or a shape that disagrees with its byte length, are each
 * refused with a {@link SafeTensorsFormatException} that names the file and the tensor. Nothing is returned
 * unless the whole file is valid.
 *
 * <p>Writing goes to a temporary file in the target's folder which is then atomically renamed over the
 * target, so a failure or crash in the middle of a save never destroys the previous file.
 *
 * <pre>{@code
 * SafeTensors st = SafeTensors.read(path);
 * Tensor w = st.tensor("weight_ih_l0");
 * SafeTensors.writer().put("y", y).put("lengths", len, DType.I64).metadata("cell", "lstm").save(out);
 * }</pre>
 */
public final class SafeTensors {
    /** Larger headers are refused before anything is allocated (the reference implementation's limit). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** The most elements a {@link Tensor} can hold (a Java array's limit). */
    static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    private static final String METADATA_KEY = "__metadata__";
    private static final int CHUNK_BYTES = 1 << 20;
    private static final SecureRandom TEMP_NAMES = new SecureRandom();

    private final Path file;
    private final Map<String, Tensor> tensors;
    private final Map<String, DType> dtypes;
    private final Map<String, String> metadata;

    private SafeTensors(Path file, Map<String, Tensor> tensors, Map<String, DType> dtypes, Map<String, String> metadata) {
        this.file = file;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.dtypes = Collections.unmodifiableMap(dtypes);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /** The file this was read from. */
    public Path file() {
        return file;
    }

    /** Every tensor, in the order of their data in the file. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** The dtype each tensor was stored with. */
    public Map<String, DType> dtypes() {
        return dtypes;
    }

    /** The {@code __metadata__} string map (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The named tensor; throws naming the file, the tensor and what the file holds when it is absent. */
    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException(file + ": no tensor named '" + name + "' (file holds " + tensors.keySet() + ")");
        return t;
    }

    /**
     * The tensors, for loading as parameters: throws {@link IllegalArgumentException} naming the file, the first
     * tensor stored with an integer dtype and that dtype (a parameter is F32 or F64; integers in its place
     * mean the wrong file or a wrong export, which would otherwise load silently as whole numbers).
     */
    public Map<String, Tensor> floatTensors() {
        for (Map.Entry<String, DType> e : dtypes.entrySet()) {
            if (e.getValue().isInteger()) {
                throw new IllegalArgumentException(file + ": parameter '" + e.getKey() + "' has dtype " + e.getValue()
                        + ", expected a floating-point dtype (F32 or F64)");
            }
        }
        return tensors;
    }

    /** The stored dtype of the named tensor. */
    public DType dtype(String name) {
        tensor(name);
        return dtypes.get(name);
    }

    /** Shorthand for {@code read(file).tensors()}. */
    public static Map<String, Tensor> load(Path file) throws IOException {
        return read(file).tensors();
    }

    /** Reads and validates a whole file. */
    public static SafeTensors read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return read(file, ch);
        }
    }

    /** One tensor's header entry. */
    private record Entry(String name, DType dtype, int[] shape, long begin, long end, int headerIndex) {}

    private static SafeTensors read(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw format(file, "truncated: the file has " + size + " bytes, fewer than the 8-byte header length");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(file, ch, lenBuf, 0);
        long headerLen = lenBuf.getLong(0);
        if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
            throw format(file, "header length " + Long.toUnsignedString(headerLen) + " exceeds the limit of "
                    + MAX_HEADER_BYTES + " bytes (corrupt or not a safetensors file)");
        }
        if (headerLen < 2) throw format(file, "header length " + headerLen + " is too short for a JSON object");
        if (headerLen > size - 8) {
            throw format(file, "header length " + headerLen + " runs past the end of the file (" + size
                    + " bytes): truncated or not a safetensors file");
        }
        ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
        readFully(file, ch, headerBuf, 8);
        String headerText;
        try {
            headerText = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(headerBuf.flip())
                    .toString();
        } catch (CharacterCodingException e) {
            throw format(file, "header is not valid UTF-8");
        }
        Object root;
        try {
            root = Json.parse(headerText);
        } catch (Json.ParseException e) {
            throw format(file, "header is not valid JSON: " + e.getMessage());
        }
        if (!(root instanceof Map<?, ?> rootMap)) throw format(file, "header is not a JSON object");

        long dataLen = size - 8 - headerLen;
        List<Entry> entries = new ArrayList<>();
        LinkedHashMap<String, String> metadata = new LinkedHashMap<>();
        int index = 0;
        for (Map.Entry<?, ?> e : rootMap.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals(METADATA_KEY)) {
                parseMetadata(file, e.getValue(), metadata);
            } else {
                entries.add(parseEntry(file, name, e.getValue(), index++));
            }
        }

        // The data must be covered exactly once: sorted by offset, each tensor starts where the previous ended.
        List<Entry> ordered = new ArrayList<>(entries);
        ordered.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end).thenComparingInt(Entry::headerIndex));
        long expected = 0;
        String previous = null;
        for (Entry en : ordered) {
            if (en.begin() < expected) {
                throw format(file, "tensor '" + en.name() + "': data_offsets [" + en.begin() + ", " + en.end()
                        + "] overlap tensor '" + previous + "' (which ends at " + expected + ")");
            }
            if (en.begin() > expected) {
                throw format(file, "tensor '" + en.name() + "': data_offsets [" + en.begin() + ", " + en.end()
                        + "] leave a gap of " + (en.begin() - expected) + " bytes after "
                        + (previous == null ? "the start of the data" : "tensor '" + previous + "'"));
            }
            if (en.end() > dataLen) {
                throw format(file, "tensor '" + en.name() + "': data_offsets [" + en.begin() + ", " + en.end()
                        + "] run past the end of the data (" + dataLen + " bytes): the file is truncated");
            }
            expected = en.end();
            previous = en.name();
        }
        if (expected != dataLen) {
            throw format(file, (dataLen - expected) + " trailing bytes after the last tensor"
                    + (previous == null ? "" : " '" + previous + "'") + " are not covered by any tensor");
        }

        LinkedHashMap<String, Tensor> tensors = new LinkedHashMap<>();
        LinkedHashMap<String, DType> dtypes = new LinkedHashMap<>();
        long dataStart = 8 + headerLen;
        for (Entry en : ordered) {
            tensors.put(en.name(), readTensor(file, ch, en, dataStart));
            dtypes.put(en.name(), en.dtype());
        }
        return new SafeTensors(file, tensors, dtypes, metadata);
    }

    private static void parseMetadata(Path file, Object v, Map<String, String> out) throws SafeTensorsFormatException {
        if (!(v instanceof Map<?, ?> m)) throw format(file, METADATA_KEY + " is not a JSON object");
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw format(file, METADATA_KEY + " entry '" + e.getKey() + "' is not a string");
            }
            out.put((String) e.getKey(), s);
        }
    }

    private static Entry parseEntry(Path file, String name, Object v, int index) throws SafeTensorsFormatException {
        String where = "tensor '" + name + "': ";
        if (!(v instanceof Map<?, ?> m)) throw format(file, where + "header entry is not a JSON object");
        for (Object key : m.keySet()) {
            if (!key.equals("dtype") && !key.equals("shape") && !key.equals("data_offsets")) {
                throw format(file, where + "unexpected header field '" + key + "' (expected dtype, shape, data_offsets)");
            }
        }
        if (!(m.get("dtype") instanceof String dtypeName)) throw format(file, where + "missing or non-string dtype");
        DType dtype = DType.fromHeader(dtypeName);
        if (dtype == null) {
            throw format(file, where + "unsupported dtype '" + dtypeName + "' (supported: F32, F64, I32, I64)");
        }
        if (!(m.get("shape") instanceof List<?> shapeList)) throw format(file, where + "missing or non-array shape");
        int[] shape = new int[shapeList.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            Long d = Json.asLong(shapeList.get(i));
            if (d == null || d < 0 || d > MAX_ELEMENTS) {
                throw format(file, where + "shape " + shapeList + ": dimension " + i + " is not an integer in [0, " + MAX_ELEMENTS + "]");
            }
            shape[i] = (int) (long) d;
            count *= d;
            if (count > MAX_ELEMENTS) {
                throw format(file, where + "shape " + shapeList + " has more elements than a tensor can hold (" + MAX_ELEMENTS + ")");
            }
        }
        if (!(m.get("data_offsets") instanceof List<?> offs) || offs.size() != 2) {
            throw format(file, where + "missing data_offsets or not a [begin, end] pair");
        }
        Long begin = Json.asLong(offs.get(0));
        Long end = Json.asLong(offs.get(1));
        if (begin == null || end == null || begin < 0 || end < begin) {
            throw format(file, where + "data_offsets " + offs + " are not integers with 0 <= begin <= end");
        }
        long bytes = count * dtype.bytes();
        if (end - begin != bytes) {
            throw format(file, where + "shape " + Arrays.toString(shape) + " of " + dtype + " needs " + bytes
                    + " bytes but data_offsets [" + begin + ", " + end + "] span " + (end - begin));
        }
        return new Entry(name, dtype, shape, begin, end, index);
    }

    private static Tensor readTensor(Path file, FileChannel ch, Entry en, long dataStart) throws IOException {
        Tensor t = Tensor.zeros(en.shape());
        double[] out = t.data();
        int elemBytes = en.dtype().bytes();
        int perChunk = CHUNK_BYTES / elemBytes;
        ByteBuffer buf = ByteBuffer.allocate(perChunk * elemBytes).order(ByteOrder.LITTLE_ENDIAN);
        long position = dataStart + en.begin();
        for (int done = 0; done < out.length; ) {
            int n = Math.min(perChunk, out.length - done);
            buf.clear().limit(n * elemBytes);
            readFully(file, ch, buf, position);
            buf.flip();
            for (int i = 0; i < n; i++, done++) {
                switch (en.dtype()) {
                    case F32 -> out[done] = buf.getFloat();
                    case F64 -> out[done] = buf.getDouble();
                    case I32 -> out[done] = buf.getInt();
                    case I64 -> {
                        long v = buf.getLong();
                        if (v > DType.MAX_EXACT_INTEGER || v < -DType.MAX_EXACT_INTEGER) {
                            throw format(file, "tensor '" + en.name() + "': I64 value " + v + " at flat index " + done
                                    + " is not exactly representable as a double (|v| > 2^53)");
                        }
                        out[done] = v;
                    }
                }
            }
            position += (long) n * elemBytes;
        }
        return t;
    }

    private static void readFully(Path file, FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long p = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, p);
            if (n < 0) throw new EOFException(file + ": unexpected end of file at byte " + p + " (file changed while reading?)");
            p += n;
        }
    }

    private static SafeTensorsFormatException format(Path file, String message) {
        return new SafeTensorsFormatException(file + ": " + message);
    }

    /** A new, empty writer. */
    public static Writer writer() {
        return new Writer();
    }

    /** Writes every tensor of {@code tensors}, in map order, as F32. */
    public static void save(Path file, Map<String, Tensor> tensors) throws IOException {
        Writer w = writer();
        tensors.forEach(w::put);
        w.save(file);
    }

    /**
     * Collects tensors (each with its dtype) and metadata, then writes them in one atomic {@link #save}.
     * The writer keeps references to the tensors, not copies: do not change them before saving.
     */
    public static final class Writer {
        private record Item(Tensor tensor, DType dtype) {}

        private final LinkedHashMap<String, Item> items = new LinkedHashMap<>();
        private final LinkedHashMap<String, String> metadata = new LinkedHashMap<>();

        private Writer() {}

        /** Adds a tensor stored as F32. */
        public Writer put(String name, Tensor tensor) {
            return put(name, tensor, DType.F32);
        }

        /**
         * Adds a tensor with the given dtype. Integer dtypes require integral values in range (I64: |v| &lt;= 2^53,
         * so that reading back is exact); a value that is not is reported, naming the tensor and index, by
         * {@link #save}. F32 rounds to nearest.
         */
        public Writer put(String name, Tensor tensor, DType dtype) {
            if (name == null || name.isEmpty()) throw new IllegalArgumentException("name: must be a non-empty string");
            if (name.equals(METADATA_KEY)) throw new IllegalArgumentException("name: '" + METADATA_KEY + "' is reserved for metadata");
            if (tensor == null) throw new IllegalArgumentException("tensor '" + name + "': must not be null");
            if (dtype == null) throw new IllegalArgumentException("tensor '" + name + "': dtype must not be null");
            if (items.containsKey(name)) throw new IllegalArgumentException("tensor '" + name + "': added twice");
            items.put(name, new Item(tensor, dtype));
            return this;
        }

        /** The names added so far, in order. */
        public List<String> names() {
            return List.copyOf(items.keySet());
        }

        /** Adds a {@code __metadata__} entry. */
        public Writer metadata(String key, String value) {
            if (key == null || value == null) throw new IllegalArgumentException("metadata: key and value must not be null");
            metadata.put(key, value);
            return this;
        }

        /**
         * Writes the file: to a temporary file next to {@code file}, flushed to disk, then atomically renamed
         * over {@code file}. On any failure the temporary file is removed and {@code file} is left as it was.
         */
        public void save(Path file) throws IOException {
            byte[] header = header();
            Path target = file.toAbsolutePath();
            Path dir = target.getParent();
            Path tmp = null;
            FileChannel opened = null;
            // Not Files.createTempFile: it makes the file owner-only (0600), and the rename would carry that over
            // to the checkpoint; a plain create gets the permissions any new file in the folder gets.
            for (int attempt = 0; opened == null; attempt++) {
                tmp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(TEMP_NAMES.nextLong()) + ".tmp");
                try {
                    opened = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                } catch (FileAlreadyExistsException e) {
                    if (attempt == 10) throw e;
                }
            }
            boolean moved = false;
            try {
                try (FileChannel ch = opened) {
                    ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
                    writeFully(ch, len);
                    writeFully(ch, ByteBuffer.wrap(header));
                    ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                    for (Map.Entry<String, Item> e : items.entrySet()) {
                        writeData(ch, buf, e.getKey(), e.getValue());
                    }
                    // Durable before the rename makes it visible: a crash after the rename must not leave a hole.
                    ch.force(true);
                }
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                moved = true;
                syncFolder(dir);
            } finally {
                if (!moved) Files.deleteIfExists(tmp);
            }
        }

        /** Makes the rename itself durable where the platform allows syncing a folder (Linux does); best effort. */
        private static void syncFolder(Path dir) {
            try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
                d.force(true);
            } catch (IOException | UnsupportedOperationException e) {
                // The new file is complete either way; only the rename's durability across a crash is at stake.
            }
        }

        private byte[] header() {
            StringBuilder sb = new StringBuilder("{");
            boolean first = true;
            if (!metadata.isEmpty()) {
                Json.writeString(sb, METADATA_KEY);
                sb.append(":{");
                boolean firstMeta = true;
                for (Map.Entry<String, String> e : metadata.entrySet()) {
                    if (!firstMeta) sb.append(',');
                    firstMeta = false;
                    Json.writeString(sb, e.getKey());
                    sb.append(':');
                    Json.writeString(sb, e.getValue());
                }
                sb.append('}');
                first = false;
            }
            long offset = 0;
            for (Map.Entry<String, Item> e : items.entrySet()) {
                Tensor t = e.getValue().tensor();
                DType d = e.getValue().dtype();
                long bytes = (long) t.size() * d.bytes();
                if (!first) sb.append(',');
                first = false;
                Json.writeString(sb, e.getKey());
                sb.append(":{\"dtype\":\"").append(d.name()).append("\",\"shape\":[");
                int[] shape = t.shape();
                for (int i = 0; i < shape.length; i++) {
                    if (i > 0) sb.append(',');
                    sb.append(shape[i]);
                }
                sb.append("],\"data_offsets\":[").append(offset).append(',').append(offset + bytes).append("]}");
                offset += bytes;
            }
            sb.append('}');
            // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
            while ((8 + utf8Length(sb)) % 8 != 0) sb.append(' ');
            byte[] header = sb.toString().getBytes(StandardCharsets.UTF_8);
            if (header.length > MAX_HEADER_BYTES) {
                throw new IllegalArgumentException("header: " + header.length + " bytes exceeds the limit of " + MAX_HEADER_BYTES
                        + " (too many tensors or too much metadata)");
            }
            return header;
        }

        private static long utf8Length(CharSequence s) {
            return s.toString().getBytes(StandardCharsets.UTF_8).length;
        }

        private static void writeData(FileChannel ch, ByteBuffer buf, String name, Item item) throws IOException {
            double[] d = item.tensor().data();
            DType dtype = item.dtype();
            buf.clear();
            for (int i = 0; i < d.length; i++) {
                if (buf.remaining() < 8) {
                    writeFully(ch, buf.flip());
                    buf.clear();
                }
                double v = d[i];
                switch (dtype) {
                    case F32 -> buf.putFloat((float) v);
                    case F64 -> buf.putDouble(v);
                    case I32 -> {
                        if (v != Math.rint(v) || v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
                            throw badInteger(name, dtype, i, v, "an integer in [" + Integer.MIN_VALUE + ", " + Integer.MAX_VALUE + "]");
                        }
                        buf.putInt((int) v);
                    }
                    case I64 -> {
                        if (v != Math.rint(v) || Math.abs(v) > DType.MAX_EXACT_INTEGER) {
                            throw badInteger(name, dtype, i, v, "an integer with |v| <= 2^53");
                        }
                        buf.putLong((long) v);
                    }
                }
            }
            writeFully(ch, buf.flip());
        }

        private static IllegalArgumentException badInteger(String name, DType dtype, int index, double v, String expected) {
            return new IllegalArgumentException("tensor '" + name + "': cannot store as " + dtype + ": value " + v
                    + " at flat index " + index + " is not " + expected);
        }

        private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
            while (buf.hasRemaining()) ch.write(buf);
        }
    }
}
