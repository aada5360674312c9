package dev.recur.engine;

import dev.recur.tensor.Tensor;

import java.util.Map;

/**
 * Gradients of one backward pass of {@code sum(y*dy) + sum(h_n*dhn) + sum(c_n*dcn)}.
 *
 * @param dx      same shape and layout as x
 * @param dh0     {@code [L*D, B, Hout]}
 * @param dc0     {@code [L*D, B, H]} for LSTM, else null
 * @param weights gradient of every parameter, keyed by the parameter's own name (e.g. {@code weight_ih_l0_reverse})
 */
public record RnnGradients(Tensor dx, Tensor dh0, Tensor dc0, Map<String, Tensor> weights) {
    public Tensor weight(String name) {
        Tensor t = weights.get(name);
        if (t == null) throw new IllegalArgumentException("gradients: no parameter named '" + name + "'");
        return t;
    }
}
