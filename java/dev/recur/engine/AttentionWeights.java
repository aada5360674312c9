package dev.recur.engine;

import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The parameters of an attention layer by name ({@code W_a}; {@code W1}, {@code W2}, {@code v}), checked
 * against an {@link AttentionConfig}: every required name present with its shape, nothing else.
 * The tensors are held, not copied: {@link #get} returns the live tensor.
 */
public final class AttentionWeights {
    private final AttentionConfig config;
    private final Map<String, Tensor> tensors;

    private AttentionWeights(AttentionConfig config, Map<String, Tensor> tensors) {
        this.config = config;
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /** Validates {@code tensors} against {@code config}, naming the tensor, expected and actual shape. */
    public static AttentionWeights of(AttentionConfig config, Map<String, Tensor> tensors) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (tensors == null) throw new IllegalArgumentException("weights: must not be null");
        Map<String, int[]> shapes = config.weightShapes();
        for (String name : tensors.keySet()) {
            if (!shapes.containsKey(name)) {
                throw new IllegalArgumentException("weights: unexpected tensor '" + name + "' for " + config.score().label()
                        + " attention, expected exactly " + shapes.keySet());
            }
        }
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            Tensor t = tensors.get(e.getKey());
            if (t == null) {
                throw new IllegalArgumentException("weights: " + e.getKey() + " of shape " + Arrays.toString(e.getValue())
                        + " is missing for " + config.score().label() + " attention");
            }
            if (!t.sameShape(e.getValue())) {
                throw new IllegalArgumentException("weights: " + e.getKey() + " expected shape " + Arrays.toString(e.getValue())
                        + ", got " + Arrays.toString(t.shape()));
            }
            m.put(e.getKey(), t);
        }
        return new AttentionWeights(config, m);
    }

    /**
     * PyTorch {@code nn.Linear}-style initialisation, seeded: each matrix U(-1/sqrt(fan_in), 1/sqrt(fan_in))
     * with fan_in its column count ({@code W_a}, {@code W1}: He; {@code W2}: Hd) and {@code v} U(-1/sqrt(A),
     * 1/sqrt(A)). Values are rounded to float32 so every backend starts from the same numbers.
     */
    public static AttentionWeights init(AttentionConfig config, long seed) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        SplittableRandom rnd = new SplittableRandom(seed);
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : config.weightShapes().entrySet()) {
            int[] shape = e.getValue();
            int fanIn = shape[shape.length - 1];
            double bound = 1.0 / Math.sqrt(fanIn);
            Tensor t = Tensor.zeros(shape);
            double[] d = t.data();
            for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextDouble(-bound, bound);
            m.put(e.getKey(), t);
        }
        return new AttentionWeights(config, m);
    }

    public AttentionConfig config() {
        return config;
    }

    /** The named tensor; throws naming the valid names for an unknown one. */
    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException("name: expected one of " + tensors.keySet() + " for "
                    + config.score().label() + " attention, got '" + name + "'");
        }
        return t;
    }

    /** Name to tensor, in {@link AttentionScore#weightNames()} order (unmodifiable; the tensors are live). */
    public Map<String, Tensor> asMap() {
        return tensors;
    }

    /** A deep copy. */
    public AttentionWeights copy() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        tensors.forEach((k, v) -> m.put(k, v.copy()));
        return new AttentionWeights(config, m);
    }
}
