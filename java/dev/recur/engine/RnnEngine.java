package dev.recur.engine;

import dev.recur.config.DropoutMask;
import dev.recur.tensor.Tensor;

/**
 * What the model API needs of something that runs a whole network: the reference implements it directly in
 * float64, every device backend through the shared schedule ({@code dev.recur.schedule}); the model API picks one
 * per backend ({@code dev.recur.nn.Engines}). {@code dev.recur.nn.Rnn} validates all arguments and converts
 * layouts before calling in, so engines see time-major tensors of the right
 * shapes, lengths in [1, T], and zero tensors in place of absent states and gradients.
 */
public interface RnnEngine extends AutoCloseable {
    /** Replaces the parameters (uploads them, for a device engine). */
    void setWeights(RnnWeights weights);

    /**
     * @param x        {@code [T, B, I]}
     * @param h0       {@code [L*D, B, Hout]}
     * @param c0       {@code [L*D, B, H]} (LSTM) or null
     * @param lengths  {@code [B]}, each in [1, T]
     * @param training save activations for backward and apply dropout
     * @param seed     dropout seed (see {@link DropoutMask})
     */
    RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed);

    /** Backward through time from a trace this engine made; {@code dcN} null for non-LSTM cells. */
    RnnGradients backward(RnnTrace trace, Tensor dy, Tensor dhN, Tensor dcN);

    @Override
    void close();
}
