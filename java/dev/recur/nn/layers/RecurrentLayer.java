package dev.recur.nn.layers;

import dev.recur.backend.Backend;
import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;

import java.util.Map;

/**
 * An {@link Rnn} whose weights are registered in a {@link Parameters} as {@code <prefix>.<pytorch name>}
 * (e.g. {@code encoder.weight_ih_l0_reverse}). Before each forward it re-uploads the weights when the
 * parameters changed since the last upload, and {@link #backward} adds the weight gradients into the
 * parameters' gradients. Runs on whatever backend the {@code Rnn} is bound to.
 */
public final class RecurrentLayer implements AutoCloseable {
    private final Rnn rnn;
    private final RnnWeights weights;
    private final Parameters params;
    private final String prefix;
    private long syncedVersion = -1;

    /** Initialises the weights with {@link RnnWeights#init} from {@code seed} and registers them. */
    public RecurrentLayer(Parameters params, String prefix, RnnConfig config, Backend backend, long seed) {
        if (params == null) throw new IllegalArgumentException("params: must not be null");
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        if (config.batchFirst()) {
            throw new IllegalArgumentException("config: the model API works time-major; expected batchFirst = false, got true");
        }
        this.params = params;
        this.prefix = prefix;
        this.weights = RnnWeights.init(config, seed);
        for (Map.Entry<String, Tensor> e : weights.asMap().entrySet()) params.add(prefix + "." + e.getKey(), e.getValue());
        this.rnn = Rnn.create(config, backend, weights);
        this.syncedVersion = params.version();
    }

    public RnnConfig config() {
        return rnn.config();
    }

    public Rnn rnn() {
        return rnn;
    }

    public String prefix() {
        return prefix;
    }

    private void sync() {
        if (syncedVersion != params.version()) {
            rnn.setWeights(weights);
            syncedVersion = params.version();
        }
    }

    /** Inference forward (no dropout, nothing saved). */
    public RnnOutput forward(RnnInput in) {
        sync();
        return rnn.forward(in);
    }

    /** Training forward: dropout from {@code seed}, saves what backward needs. */
    public RnnOutput forwardTraining(RnnInput in, long seed) {
        sync();
        return rnn.forwardTraining(in, seed);
    }

    /** Backward (see {@link Rnn#backward}); weight gradients are added into the parameters. */
    public RnnGradients backward(RnnOutput out, Tensor dy, Tensor dhN, Tensor dcN) {
        RnnGradients g = rnn.backward(out, dy, dhN, dcN);
        for (Map.Entry<String, Tensor> e : g.weights().entrySet()) params.accumulate(prefix + "." + e.getKey(), e.getValue());
        return g;
    }

    @Override
    public void close() {
        rnn.close();
    }
}
