package dev.recur.backend.reference;

import dev.recur.config.RnnConfig;
import dev.recur.engine.RnnWeights;
import dev.recur.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The parameters of one layer and direction as flat row-major arrays (null when the configuration has no
 * such parameter). The same class holds their gradients during backward, with identical shapes.
 */
final class DirectionParams {
    final int layer;
    final int direction;
    /** Input width of this layer. */
    final int in;
    /** H. */
    final int hidden;
    /** Hout (P when projected). */
    final int out;
    /** G. */
    final int gates;

    /** Parameter base names, in the order {@link RnnWeights#shapes} lists them. */
    static final String[] BASES = {
        "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_ci", "weight_cf", "weight_co",
        "ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias"
    };

    double[] wih;
    double[] whh;
    double[] bih;
    double[] bhh;
    double[] whr;
    double[] wci;
    double[] wcf;
    double[] wco;
    double[] lnIhWeight;
    double[] lnIhBias;
    double[] lnHhWeight;
    double[] lnHhBias;

    private DirectionParams(RnnConfig c, int layer, int direction) {
        this.layer = layer;
        this.direction = direction;
        this.in = c.layerInputSize(layer);
        this.hidden = c.hiddenSize();
        this.out = c.outSize();
        this.gates = c.gates();
    }

    /** A snapshot (copy) of the weights of layer {@code k}, direction {@code d}. */
    static DirectionParams copyOf(RnnWeights w, int k, int d) {
        DirectionParams p = new DirectionParams(w.config(), k, d);
        for (String base : BASES) {
            Tensor t = w.find(base, k, d);
            if (t != null) p.set(base, t.data().clone());
        }
        return p;
    }

    /** Zero gradients with the same parameters present as {@code like}. */
    static DirectionParams zerosLike(DirectionParams like) {
        DirectionParams g = new DirectionParams(like);
        for (String base : BASES) {
            double[] a = like.get(base);
            if (a != null) g.set(base, new double[a.length]);
        }
        return g;
    }

    private DirectionParams(DirectionParams like) {
        this.layer = like.layer;
        this.direction = like.direction;
        this.in = like.in;
        this.hidden = like.hidden;
        this.out = like.out;
        this.gates = like.gates;
    }

    double[] get(String base) {
        return switch (base) {
            case "weight_ih" -> wih;
            case "weight_hh" -> whh;
            case "bias_ih" -> bih;
            case "bias_hh" -> bhh;
            case "weight_hr" -> whr;
            case "weight_ci" -> wci;
            case "weight_cf" -> wcf;
            case "weight_co" -> wco;
            case "ln_ih_weight" -> lnIhWeight;
            case "ln_ih_bias" -> lnIhBias;
            case "ln_hh_weight" -> lnHhWeight;
            case "ln_hh_bias" -> lnHhBias;
            default -> throw new IllegalArgumentException("parameter: unknown base name '" + base + "'");
        };
    }

    private void set(String base, double[] a) {
        switch (base) {
            case "weight_ih" -> wih = a;
            case "weight_hh" -> whh = a;
            case "bias_ih" -> bih = a;
            case "bias_hh" -> bhh = a;
            case "weight_hr" -> whr = a;
            case "weight_ci" -> wci = a;
            case "weight_cf" -> wcf = a;
            case "weight_co" -> wco = a;
            case "ln_ih_weight" -> lnIhWeight = a;
            case "ln_ih_bias" -> lnIhBias = a;
            case "ln_hh_weight" -> lnHhWeight = a;
            case "ln_hh_bias" -> lnHhBias = a;
            default -> throw new IllegalArgumentException("parameter: unknown base name '" + base + "'");
        }
    }

    /** Puts every present array into {@code m} under its full parameter name, with its shape from {@code shapes}. */
    void exportTo(Map<String, Tensor> m, LinkedHashMap<String, int[]> shapes) {
        for (String base : BASES) {
            double[] a = get(base);
            if (a == null) continue;
            String name = base + RnnWeights.suffix(layer, direction);
            m.put(name, Tensor.of(a, shapes.get(name)));
        }
    }
}
