package dev.recur.nn.layers;

/**
 * How a many-to-one head reduces a sequence of outputs to one vector per sequence.
 * <ul>
 *   <li>{@link #LAST}: the final hidden state of the top layer, {@code h_n} (for a bidirectional network
 *       the two directions' final states concatenated: forward after its last step, reverse after step 0).</li>
 *   <li>{@link #MEAN}: the mean of the outputs over each sequence's own steps.</li>
 *   <li>{@link #MAX}: the elementwise max of the outputs over each sequence's own steps (the gradient goes
 *       to the first step holding the max).</li>
 * </ul>
 */
public enum Pooling {
    LAST,
    MEAN,
    MAX
}
