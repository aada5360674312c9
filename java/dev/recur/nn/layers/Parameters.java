package dev.recur.nn.layers;

import dev.recur.io.DType;
import dev.recur.io.SafeTensors;
import dev.recur.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The trainable tensors of a model by name, each with a gradient of the same shape: what optimizers step,
 * what gradient clipping scales and what checkpoints save. Values are held live (not copied), so the layer
 * that registered a tensor computes with the same array the optimizer writes into.
 *
 * <p>Layers whose parameters live elsewhere too (an {@link dev.recur.nn.Rnn} uploads its weights to a
 * device) compare {@link #version()} with the version they last uploaded: every writer of values (optimizers,
 * {@link #load}, {@link #markChanged}) bumps it.
 */
public final class Parameters {
    private final LinkedHashMap<String, Tensor> values = new LinkedHashMap<>();
    private final LinkedHashMap<String, Tensor> grads = new LinkedHashMap<>();
    private long version;

    /** Registers {@code value} (held live) under {@code name} with a zero gradient; returns {@code value}. */
    public Tensor add(String name, Tensor value) {
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("name: must be a non-empty string");
        if (value == null) throw new IllegalArgumentException("value: tensor '" + name + "' must not be null");
        if (values.containsKey(name)) throw new IllegalArgumentException("name: parameter '" + name + "' is already registered");
        values.put(name, value);
        grads.put(name, Tensor.zeros(value.shape()));
        version++;
        return value;
    }

    /** The live value of a parameter; throws naming the parameter when it does not exist. */
    public Tensor value(String name) {
        Tensor t = values.get(name);
        if (t == null) throw new IllegalArgumentException("name: no parameter '" + name + "' (have " + values.keySet() + ")");
        return t;
    }

    /** The live gradient of a parameter. */
    public Tensor grad(String name) {
        value(name);
        return grads.get(name);
    }

    public boolean contains(String name) {
        return values.containsKey(name);
    }

    /** Parameter names in registration order. */
    public List<String> names() {
        return List.copyOf(values.keySet());
    }

    /** Unmodifiable name → live value view, in registration order. */
    public Map<String, Tensor> values() {
        return Collections.unmodifiableMap(values);
    }

    /** Unmodifiable name → live gradient view, in registration order. */
    public Map<String, Tensor> grads() {
        return Collections.unmodifiableMap(grads);
    }

    /** Total number of scalar parameters. */
    public long count() {
        long n = 0;
        for (Tensor t : values.values()) n += t.size();
        return n;
    }

    /** {@code grad[name] += g}; {@code g} must have the parameter's shape. */
    public void accumulate(String name, Tensor g) {
        Tensor acc = grad(name);
        if (g == null) throw new IllegalArgumentException("gradient of '" + name + "': must not be null");
        if (!acc.sameShape(g.shape())) {
            throw new IllegalArgumentException("gradient of '" + name + "': expected shape " + Arrays.toString(acc.shape())
                    + ", got " + Arrays.toString(g.shape()));
        }
        double[] a = acc.data(), d = g.data();
        for (int i = 0; i < a.length; i++) a[i] += d[i];
    }

    /** Sets every gradient to 0. */
    public void zeroGrad() {
        for (Tensor g : grads.values()) Arrays.fill(g.data(), 0.0);
    }

    /** Counter bumped whenever values may have changed. */
    public long version() {
        return version;
    }

    /** Declares that values were written (call after changing a value tensor by hand). */
    public void markChanged() {
        version++;
    }

    /** Deep copy of every value, by name (for snapshots and tests). */
    public Map<String, Tensor> snapshot() {
        LinkedHashMap<String, Tensor> m = new LinkedHashMap<>();
        values.forEach((k, v) -> m.put(k, v.copy()));
        return m;
    }

    /** Copies values from {@code source} (same names and shapes exactly, checked first) into the live tensors. */
    public void copyFrom(Map<String, Tensor> source) {
        if (source == null) throw new IllegalArgumentException("source: must not be null");
        List<String> missing = new ArrayList<>();
        for (String k : values.keySet()) if (!source.containsKey(k)) missing.add(k);
        if (!missing.isEmpty()) throw new IllegalArgumentException("source: missing parameter(s) " + missing);
        List<String> extra = new ArrayList<>();
        for (String k : source.keySet()) if (!values.containsKey(k)) extra.add(k);
        if (!extra.isEmpty()) throw new IllegalArgumentException("source: unexpected parameter(s) " + extra);
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            Tensor s = source.get(e.getKey());
            if (!e.getValue().sameShape(s.shape())) {
                throw new IllegalArgumentException("source: parameter '" + e.getKey() + "' expected shape "
                        + Arrays.toString(e.getValue().shape()) + ", got " + Arrays.toString(s.shape()));
            }
        }
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            double[] src = source.get(e.getKey()).data();
            System.arraycopy(src, 0, e.getValue().data(), 0, src.length);
        }
        version++;
    }

    /**
     * Writes every value to a safetensors file with {@code dtype} ({@link DType#F64} round-trips bit-exactly;
     * {@link DType#F32} is what PyTorch models usually hold).
     */
    public void save(Path file, DType dtype) throws IOException {
        save(file, dtype, Map.of());
    }

    /** As {@link #save(Path, DType)}, with {@code __metadata__} entries (e.g. the model configuration). */
    public void save(Path file, DType dtype, Map<String, String> metadata) throws IOException {
        if (file == null) throw new IllegalArgumentException("file: must not be null");
        if (dtype != DType.F32 && dtype != DType.F64) throw new IllegalArgumentException("dtype: expected F32 or F64, got " + dtype);
        if (metadata == null) throw new IllegalArgumentException("metadata: must not be null");
        SafeTensors.Writer w = SafeTensors.writer();
        values.forEach((k, v) -> w.put(k, v, dtype));
        metadata.forEach(w::metadata);
        w.save(file);
    }

    /** Loads a checkpoint written by {@link #save}: exactly this model's names and shapes. */
    public void load(Path file) throws IOException {
        if (file == null) throw new IllegalArgumentException("file: must not be null");
        copyFrom(SafeTensors.read(file).floatTensors());
    }
}
