package dev.recur.engine;

import dev.recur.config.RnnConfig;

/**
 * Implemented by a backend from outside this library (a test double, say) that runs networks with an engine of its
 * own: the model API ({@code dev.recur.nn.Engines}) asks it for the engine instead of choosing one, since it can
 * choose only for the backends it knows. The backends of this library do not implement it.
 */
public interface RnnEngineFactory {
    /** An engine running networks of this configuration; {@code dev.recur.nn.Rnn} owns and closes it. */
    RnnEngine createRnnEngine(RnnConfig config);
}
