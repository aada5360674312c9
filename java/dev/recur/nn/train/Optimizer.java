package dev.recur.nn.train;

import dev.recur.nn.layers.Parameters;

/**
 * Updates parameter values in place from their gradients. The state (momentum buffers, moments) is kept per
 * parameter name, so one optimizer serves one {@link Parameters}. {@link #step} marks the parameters changed
 * so device copies are refreshed; it does not zero the gradients.
 */
public interface Optimizer {
    void step(Parameters params);

    double learningRate();

    /** Changes the learning rate for the following steps (for schedules). */
    void setLearningRate(double lr);

    /** Steps taken so far. */
    long steps();
}
