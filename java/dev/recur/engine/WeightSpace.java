package dev.recur.engine;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.config.RnnConfig;
import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A network's parameters (or their gradients) as one flat float32 buffer on a device, cuDNN's weight space: every
 * parameter of {@link RnnWeights#shapes} in that order (layer by layer, forward direction then reverse, PyTorch's
 * names within), packed without gaps, with a {@link #view} per PyTorch name. One allocation per network; an
 * optimizer can update all parameters with one launch over {@link #flat()}.
 *
 * <p>Moving to and from the host is explicit: {@link #upload(RnnWeights)} and {@link #toWeights()}.
 * {@link #close()} frees the buffer if this space allocated it ({@link #allocate}); a space {@link #over} a
 * caller's tensor leaves it to the caller.
 */
public final class WeightSpace implements AutoCloseable {
    private final RnnConfig config;
    private final DeviceTensor flat;
    private final LinkedHashMap<String, Long> offsets;
    private final LinkedHashMap<String, int[]> shapes;

    private WeightSpace(RnnConfig config, DeviceTensor flat, LinkedHashMap<String, Long> offsets,
                        LinkedHashMap<String, int[]> shapes) {
        this.config = config;
        this.flat = flat;
        this.offsets = offsets;
        this.shapes = shapes;
    }

    /** Float32 elements of {@code config}'s weight space. */
    public static long elements(RnnConfig config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        long n = 0;
        for (int[] s : RnnWeights.shapes(config).values()) n += count(s);
        return n;
    }

    /** A new weight space for {@code config} on {@code backend}, zero-filled on the device. */
    public static WeightSpace allocate(DeviceBackend backend, RnnConfig config) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        long n = elements(config);
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("config: " + n + " parameters exceed the kernels' int32 index range");
        }
        DeviceTensor t = DeviceTensor.zeros(backend, (int) n);
        return layout(config, t);
    }

    /**
     * A weight space over the caller's float32 tensor {@code flat} (exactly {@link #elements} elements, e.g. over
     * wrapped memory): closing the space leaves {@code flat} open.
     */
    public static WeightSpace over(DeviceTensor flat, RnnConfig config) {
        if (flat == null) throw new IllegalArgumentException("flat: must not be null");
        long n = elements(config);
        if (flat.type() != DeviceBuffer.Type.F32 || flat.size() != n) {
            throw new IllegalArgumentException("flat: expected an F32 tensor of " + n + " elements for " + config.cell()
                    + ", got " + flat.type() + " " + Arrays.toString(flat.shape()));
        }
        return layout(config, flat.view(0, (int) n));
    }

    private static WeightSpace layout(RnnConfig config, DeviceTensor flat) {
        LinkedHashMap<String, int[]> shapes = RnnWeights.shapes(config);
        LinkedHashMap<String, Long> offsets = new LinkedHashMap<>();
        long off = 0;
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            offsets.put(e.getKey(), off);
            off += count(e.getValue());
        }
        return new WeightSpace(config, flat, offsets, shapes);
    }

    private static long count(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public RnnConfig config() {
        return config;
    }

    /** The whole space, {@code [elements]}. */
    public DeviceTensor flat() {
        return flat;
    }

    public DeviceBackend backend() {
        return flat.backend();
    }

    /** The parameter {@code name} (e.g. {@code weight_hh_l0_reverse}) as a view of its PyTorch shape. */
    public DeviceTensor view(String name) {
        return flat.view(offset(name), shape(name));
    }

    /** Where {@code name} starts in {@link #flat()}, in elements. */
    public long offset(String name) {
        Long o = offsets.get(name);
        if (o == null) {
            throw new IllegalArgumentException("name: no parameter named '" + name + "'; expected one of " + offsets.keySet());
        }
        return o;
    }

    /** The PyTorch shape of {@code name}. */
    public int[] shape(String name) {
        offset(name);
        return shapes.get(name).clone();
    }

    /** Parameter names in the space's order. */
    public java.util.Set<String> names() {
        return Collections.unmodifiableSet(offsets.keySet());
    }

    /** Uploads every parameter of {@code weights} (same configuration), rounded to float32: one upload each. */
    public void upload(RnnWeights weights) {
        if (weights == null) throw new IllegalArgumentException("weights: must not be null");
        Map<String, Tensor> m = weights.asMap();
        for (String name : offsets.keySet()) {
            Tensor t = m.get(name);
            if (t == null) throw new IllegalArgumentException("weights: no parameter named '" + name + "'");
            if (!Arrays.equals(t.shape(), shapes.get(name))) {
                throw new IllegalArgumentException("weights: " + name + " expected shape " + Arrays.toString(shapes.get(name))
                        + ", got " + Arrays.toString(t.shape()));
            }
        }
        for (String name : offsets.keySet()) view(name).copyFrom(m.get(name));
    }

    /** Downloads the whole space once and returns it as float64 host tensors by name. */
    public Map<String, Tensor> toTensors() {
        double[] all = flat.toTensor().data();
        LinkedHashMap<String, Tensor> m = new LinkedHashMap<>();
        for (Map.Entry<String, Long> e : offsets.entrySet()) {
            int[] s = shapes.get(e.getKey());
            int n = (int) count(s);
            m.put(e.getKey(), Tensor.of(Arrays.copyOfRange(all, (int) (long) e.getValue(), (int) (long) e.getValue() + n), s));
        }
        return m;
    }

    /** Downloads the space as host weights (one download). */
    public RnnWeights toWeights() {
        return RnnWeights.of(config, toTensors());
    }

    /** Sets every element to 0 on the device (before accumulating gradients with {@link GradMode#ADD}). */
    public void zero() {
        flat.fill(0);
    }

    /** Frees the buffer if {@link #allocate} made it. */
    @Override
    public void close() {
        flat.close();
    }
}
