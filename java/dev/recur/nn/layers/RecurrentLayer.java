package dev.recur.nn.layers;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceTensor;
import dev.recur.config.RnnConfig;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.engine.WeightSpace;
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

    /**
     * Uploads the host weights now if the parameters changed since the last upload (what every forward does first):
     * for a trainer that takes the weights over on the device ({@code rnn().weightSpace()}) and must start from the
     * host values.
     */
    public void syncToDevice() {
        sync();
    }

    /**
     * The inverse of {@link #syncToDevice()} for a trainer that updated {@code rnn().weightSpace()} on the device:
     * downloads the space once into the live host tensors registered in the parameters (float32 values, exact in
     * float64). The caller then declares the change once for all it wrote ({@link Parameters#markChanged}) and calls
     * {@link #markDeviceCurrent()} on every layer it pulled, so that the next forward does not upload them back.
     */
    public void pullFromDevice() {
        Map<String, Tensor> got = rnn.weightSpace().toTensors();
        for (Map.Entry<String, Tensor> e : weights.asMap().entrySet()) {
            double[] src = got.get(e.getKey()).data();
            System.arraycopy(src, 0, e.getValue().data(), 0, src.length);
        }
    }

    /**
     * Records that the device holds this layer's current host values as of the parameters' present version (after
     * {@link #pullFromDevice()} and the caller's {@code markChanged}).
     */
    public void markDeviceCurrent() {
        syncedVersion = params.version();
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

    /**
     * Inference forward on device tensors (see {@link Rnn#forward(DeviceRnnInput)}). The weights are uploaded first
     * only if the host parameters were changed since the last upload (an optimizer step on the host, {@code load},
     * {@code markChanged}); a trainer that keeps its weights on the device writes {@code rnn().weightSpace()} and calls
     * {@code rnn().weightsUpdated()} instead, and then must not also change the host parameters of this layer.
     */
    public DeviceRnnOutput forward(DeviceRnnInput in) {
        sync();
        return rnn.forward(in);
    }

    /** Training forward on device tensors (weights synced as {@link #forward(DeviceRnnInput)} says). */
    public DeviceRnnOutput forwardTraining(DeviceRnnInput in, long seed) {
        sync();
        return rnn.forwardTraining(in, seed);
    }

    /**
     * Backward on device tensors: the weight gradients go into the device gradient space {@code grads} as {@code mode}
     * says, not into the host parameters' gradients (download them with {@code grads.toTensors()} if the host
     * optimizer is to use them).
     */
    public DeviceRnnGradients backward(DeviceRnnOutput out, DeviceTensor dy, DeviceTensor dhN, DeviceTensor dcN,
                                       WeightSpace grads, GradMode mode) {
        return rnn.backward(out, dy, dhN, dcN, grads, mode);
    }

    @Override
    public void close() {
        rnn.close();
    }
}
