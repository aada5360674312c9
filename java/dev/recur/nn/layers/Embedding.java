package dev.recur.nn.layers;

import dev.recur.tensor.Tensor;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A lookup table {@code weight [V, E]}: token ids to vectors. Row {@code paddingIndex} (when {@code >= 0})
 * starts at 0 and never receives a gradient, so it stays 0 under any optimizer without weight decay
 * (as PyTorch's {@code padding_idx}). Parameter name: {@code <prefix>.weight}.
 */
public final class Embedding {
    private final int vocab;
    private final int dim;
    private final int paddingIndex;
    private final String name;
    private final Parameters params;
    private final Tensor weight;

    /**
     * Registers {@code <prefix>.weight} in {@code params}, initialised N(0, 1) (PyTorch's default), seeded,
     * rounded to float32 so every backend starts from the same numbers.
     *
     * @param paddingIndex the id whose row is fixed at 0, or -1 for none
     */
    public Embedding(Parameters params, String prefix, int vocab, int dim, int paddingIndex, long seed) {
        if (params == null) throw new IllegalArgumentException("params: must not be null");
        if (vocab <= 0) throw new IllegalArgumentException("vocab: expected > 0, got " + vocab);
        if (dim <= 0) throw new IllegalArgumentException("dim: expected > 0, got " + dim);
        if (paddingIndex < -1 || paddingIndex >= vocab) {
            throw new IllegalArgumentException("paddingIndex: expected -1 or in [0, " + vocab + "), got " + paddingIndex);
        }
        this.vocab = vocab;
        this.dim = dim;
        this.paddingIndex = paddingIndex;
        this.params = params;
        this.name = prefix + ".weight";
        Tensor w = Tensor.zeros(vocab, dim);
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] d = w.data();
        for (int i = 0; i < d.length; i++) d[i] = (float) rnd.nextGaussian();
        if (paddingIndex >= 0) Arrays.fill(d, paddingIndex * dim, (paddingIndex + 1) * dim, 0.0);
        this.weight = params.add(name, w);
    }

    public int vocabSize() {
        return vocab;
    }

    public int dim() {
        return dim;
    }

    public int paddingIndex() {
        return paddingIndex;
    }

    public String weightName() {
        return name;
    }

    /** Rows of {@code weight} for {@code ids}, shaped {@code shape + [E]} (the product of {@code shape} = ids.length). */
    public Tensor forward(int[] ids, int... shape) {
        checkIds(ids);
        int[] outShape = Arrays.copyOf(shape, shape.length + 1);
        outShape[shape.length] = dim;
        Tensor out = Tensor.zeros(outShape);
        if (out.size() != (long) ids.length * dim) {
            throw new IllegalArgumentException("shape: " + Arrays.toString(shape) + " holds " + out.size() / dim
                    + " ids, got " + ids.length + " ids");
        }
        double[] w = weight.data(), o = out.data();
        for (int i = 0; i < ids.length; i++) System.arraycopy(w, ids[i] * dim, o, i * dim, dim);
        return out;
    }

    /** Adds {@code dy} (shape {@code [..., E]} with ids.length rows) into the gradient rows of {@code ids}, except padding. */
    public void backward(int[] ids, Tensor dy) {
        checkIds(ids);
        if (dy == null || dy.size() != (long) ids.length * dim || dy.dim(dy.rank() - 1) != dim) {
            throw new IllegalArgumentException("dy: expected " + ids.length + " rows of " + dim + ", got "
                    + (dy == null ? "null" : Arrays.toString(dy.shape())));
        }
        double[] g = params.grad(name).data(), d = dy.data();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == paddingIndex) continue;
            int off = ids[i] * dim;
            for (int j = 0; j < dim; j++) g[off + j] += d[i * dim + j];
        }
    }

    private void checkIds(int[] ids) {
        if (ids == null) throw new IllegalArgumentException("ids: must not be null");
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException("ids: entry " + i + " must be in [0, " + vocab + "), got " + ids[i]);
            }
        }
    }
}
