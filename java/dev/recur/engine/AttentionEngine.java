package dev.recur.engine;

import dev.recur.tensor.Tensor;

/**
 * What the model API needs of something that runs attention: the reference implements it in float64
 * ({@code dev.recur.backend.reference.ReferenceAttention}), the {@code cpu} backend fused per batch row
 * ({@code dev.recur.backend.cpu.CpuAttention}), every other device backend through
 * {@code dev.recur.schedule.AttentionSchedule}; the model API picks one per backend ({@code dev.recur.nn.Engines}).
 * {@code dev.recur.nn.attention.Attention} validates every argument first, so an engine sees tensors of the right shapes and a mask of 0/1 ints.
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
