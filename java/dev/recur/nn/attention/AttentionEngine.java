package dev.recur.nn.attention;

import dev.recur.tensor.Tensor;

/**
 * What a backend provides to run attention: the reference implements it in float64
 * ({@code dev.recur.backend.reference.ReferenceAttention}), every device backend through
 * {@code dev.recur.schedule.AttentionSchedule}. {@link Attention} validates every argument first, so an
 * engine sees tensors of the right shapes and a mask of 0/1 ints.
 */
public interface AttentionEngine extends AutoCloseable {
    /** Replaces the parameters (uploads them, for a device engine). */
    void setWeights(AttentionWeights weights);

    /**
     * @param dec  {@code [U, B, Hd]}
     * @param enc  {@code [T, B, He]}
     * @param mask {@code [B*T]} row-major, 1 = valid, 0 = masked
     */
    AttentionOutput forward(Tensor dec, Tensor enc, int[] mask);

    /** Gradients of {@code sum(context * dcontext)} with {@code dcontext [U, B, He]}; recomputes the forward. */
    AttentionGradients backward(Tensor dec, Tensor enc, int[] mask, Tensor dcontext);

    @Override
    void close();
}
