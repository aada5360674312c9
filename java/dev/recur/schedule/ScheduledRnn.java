package dev.recur.schedule;

import dev.recur.backend.DeviceBackend;
import dev.recur.nn.RnnConfig;
import dev.recur.nn.RnnEngine;
import dev.recur.nn.RnnGradients;
import dev.recur.nn.RnnOutput;
import dev.recur.nn.RnnTrace;
import dev.recur.nn.RnnWeights;
import dev.recur.tensor.Tensor;

/** The shared schedule over a {@link DeviceBackend} (being written: this commit fixes the contract only). */
public final class ScheduledRnn implements RnnEngine {
    private final DeviceBackend backend;
    private final RnnConfig config;

    public ScheduledRnn(DeviceBackend backend, RnnConfig config) {
        this.backend = backend;
        this.config = config;
    }

    @Override
    public void setWeights(RnnWeights weights) {
        throw new UnsupportedOperationException("ScheduledRnn on " + backend.name() + ": not implemented yet for " + config);
    }

    @Override
    public RnnOutput forward(Tensor x, Tensor h0, Tensor c0, int[] lengths, boolean training, long seed) {
        throw new UnsupportedOperationException("ScheduledRnn: not implemented yet");
    }

    @Override
    public RnnGradients backward(RnnTrace trace, Tensor dy, Tensor dhN, Tensor dcN) {
        throw new UnsupportedOperationException("ScheduledRnn: not implemented yet");
    }

    @Override
    public void close() {
    }
}
