package dev.recur.engine;

import dev.recur.tensor.Tensor;

import java.util.Map;

/**
 * The backward result of attention: gradients of {@code sum(context * dcontext)}.
 *
 * @param dscores  {@code [U, B, T]} with respect to the raw scores (0 at masked positions)
 * @param ddec     {@code [U, B, Hd]}
 * @param denc     {@code [T, B, He]}
 * @param dweights parameter name to gradient, same names and shapes as {@link AttentionWeights}
 *                 (empty for dot and scaled scores)
 */
public record AttentionGradients(Tensor dscores, Tensor ddec, Tensor denc, Map<String, Tensor> dweights) {
    public AttentionGradients {
        // Kept in the parameters' order (W1, W2, v), unmodifiable.
        dweights = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(dweights));
    }

    /** The gradient of the named parameter; throws naming the valid names for an unknown one. */
    public Tensor weight(String name) {
        Tensor t = dweights.get(name);
        if (t == null) throw new IllegalArgumentException("name: expected one of " + dweights.keySet() + ", got '" + name + "'");
        return t;
    }
}
