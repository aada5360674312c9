package dev.recur.nn.train;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Which parameters a rule of an {@link OptimizerConfig} applies to (frozen, no weight decay, a learning-rate scale),
 * decided from the parameter's name as {@link dev.recur.nn.layers.Parameters} holds it ({@code rnn.weight_ih_l0},
 * {@code source_embedding.weight}, {@code output.bias}) and its shape. A host optimizer and a
 * {@link DeviceOptimizer} ask the same rule with the same name and shape, so both put a parameter in the same group.
 *
 * <p>The factories return records, so two configurations built alike are equal (a device trainer keeps its moments
 * while the configuration it is handed stays equal). A rule should be a pure function of its arguments.
 */
@FunctionalInterface
public interface ParamRule {
    boolean matches(String name, int[] shape);

    /** The parameters either rule matches. */
    default ParamRule or(ParamRule other) {
        if (other == null) throw new IllegalArgumentException("other: must not be null");
        return new Or(this, other);
    }

    /** Matches nothing (the default of every rule of a configuration). */
    static ParamRule none() {
        return None.INSTANCE;
    }

    /** Exactly these names. */
    static ParamRule names(String... names) {
        return new Names(Set.of(checked("names", names)));
    }

    /** Names starting with one of these (e.g. {@code "encoder."} for a whole layer). */
    static ParamRule prefixes(String... prefixes) {
        return new Prefixes(List.of(checked("prefixes", prefixes)));
    }

    /** Names the regular expression matches as a whole. */
    static ParamRule regex(String regex) {
        if (regex == null) throw new IllegalArgumentException("regex: must not be null");
        try {
            Pattern.compile(regex);   // a bad expression fails here, not at the first step
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new IllegalArgumentException("regex: not a regular expression: " + e.getMessage(), e);
        }
        return new Regex(regex);
    }

    /**
     * PyTorch's usual "no weight decay" group: tensors of at most one dimension (every bias, this code base's
     * layer-norm gains and shifts {@code ln_ih_weight_l0}, {@code ln_hh_bias_l0}, ..., and LSTM peepholes), any name
     * whose last part starts with {@code bias}, and embedding tables: a parameter of a module whose name ends in
     * {@code embedding} or {@code embeddings} ({@code embedding.weight}, {@code source_embedding.weight},
     * {@code target_embedding.weight} as {@link dev.recur.nn.layers.Embedding} names them).
     */
    static ParamRule torchNoDecay() {
        return TorchNoDecay.INSTANCE;
    }

    private static String[] checked(String arg, String[] items) {
        if (items == null || items.length == 0) throw new IllegalArgumentException(arg + ": expected at least one, got none");
        for (int i = 0; i < items.length; i++) {
            if (items[i] == null || items[i].isEmpty()) {
                throw new IllegalArgumentException(arg + ": entry " + i + " must be a non-empty string, got " + (items[i] == null ? "null" : "\"\""));
            }
        }
        if (Set.copyOf(Arrays.asList(items)).size() != items.length) {
            throw new IllegalArgumentException(arg + ": expected distinct entries, got " + Arrays.toString(items));
        }
        return items.clone();
    }

    enum None implements ParamRule {
        INSTANCE;

        @Override
        public boolean matches(String name, int[] shape) {
            return false;
        }
    }

    record Names(Set<String> names) implements ParamRule {
        @Override
        public boolean matches(String name, int[] shape) {
            return names.contains(name);
        }
    }

    record Prefixes(List<String> prefixes) implements ParamRule {
        @Override
        public boolean matches(String name, int[] shape) {
            for (String p : prefixes) if (name.startsWith(p)) return true;
            return false;
        }
    }

    record Regex(String regex) implements ParamRule {
        @Override
        public boolean matches(String name, int[] shape) {
            return Pattern.matches(regex, name);
        }
    }

    record Or(ParamRule a, ParamRule b) implements ParamRule {
        @Override
        public boolean matches(String name, int[] shape) {
            return a.matches(name, shape) || b.matches(name, shape);
        }
    }

    enum TorchNoDecay implements ParamRule {
        INSTANCE;

        @Override
        public boolean matches(String name, int[] shape) {
            if (shape.length <= 1) return true;
            int dot = name.lastIndexOf('.');
            String last = name.substring(dot + 1);
            if (last.startsWith("bias")) return true;
            if (dot < 0) return false;
            String module = name.substring(0, dot);
            String owner = module.substring(module.lastIndexOf('.') + 1);
            return owner.endsWith("embedding") || owner.endsWith("embeddings");
        }
    }
}
