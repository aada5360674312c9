package dev.recur.config;

/**
 * The shape and options of a (possibly stacked, possibly bidirectional) recurrent network.
 * Immutable; build with {@link #builder(CellType, int, int)}. Invalid combinations are refused at
 * construction with a message naming the option.
 *
 * @param cell             the cell
 * @param inputSize        features of the network input, I
 * @param hiddenSize       H, the cell state width (and the output width unless projected)
 * @param numLayers        stacked layers, L
 * @param bidirectional    two directions per layer (D = 2)
 * @param projSize         LSTM projection size P (0 = none), PyTorch's {@code proj_size}
 * @param bias             whether {@code bias_ih}/{@code bias_hh} exist
 * @param gruReset         where the GRU reset gate applies
 * @param peephole         LSTM peephole connections ({@code weight_ci/cf/co})
 * @param coupledGate      LSTM coupled input-forget gate {@code f = 1 - i} (gates i,g,o)
 * @param layerNorm        layer normalisation of the input and recurrent projections, per gate block (LSTM, GRU)
 * @param inputDropout     variational dropout on each layer's input, one mask per sequence (training only)
 * @param recurrentDropout variational dropout on h_{t-1} where it enters the recurrent matmul (training only)
 * @param dropout          dropout between layers, fresh per element (training only, never after the last layer)
 * @param residual         add each layer's input to its output for layers k >= 1
 * @param merge            how bidirectional outputs merge
 * @param batchFirst       inputs and outputs are {@code [B, T, F]} instead of {@code [T, B, F]}
 */
public record RnnConfig(
        CellType cell,
        int inputSize,
        int hiddenSize,
        int numLayers,
        boolean bidirectional,
        int projSize,
        boolean bias,
        GruReset gruReset,
        boolean peephole,
        boolean coupledGate,
        boolean layerNorm,
        double inputDropout,
        double recurrentDropout,
        double dropout,
        boolean residual,
        MergeMode merge,
        boolean batchFirst) {

    /** Epsilon inside layer normalisation's square root. */
    public static final double LAYER_NORM_EPS = 1e-5;

    public RnnConfig {
        if (cell == null) throw new IllegalArgumentException("cell: must not be null");
        if (gruReset == null) throw new IllegalArgumentException("gruReset: must not be null");
        if (merge == null) throw new IllegalArgumentException("merge: must not be null");
        if (inputSize <= 0) throw new IllegalArgumentException("inputSize: expected > 0, got " + inputSize);
        if (hiddenSize <= 0) throw new IllegalArgumentException("hiddenSize: expected > 0, got " + hiddenSize);
        if (numLayers <= 0) throw new IllegalArgumentException("numLayers: expected > 0, got " + numLayers);
        if (projSize < 0) throw new IllegalArgumentException("projSize: expected >= 0, got " + projSize);
        if (projSize > 0 && cell != CellType.LSTM) {
            throw new IllegalArgumentException("projSize: only LSTM supports a projection, got cell " + cell);
        }
        if (projSize >= hiddenSize && projSize > 0) {
            throw new IllegalArgumentException("projSize: expected < hiddenSize (" + hiddenSize + "), got " + projSize);
        }
        if (peephole && cell != CellType.LSTM) {
            throw new IllegalArgumentException("peephole: only LSTM has peephole connections, got cell " + cell);
        }
        if (coupledGate && cell != CellType.LSTM) {
            throw new IllegalArgumentException("coupledGate: only LSTM has a coupled input-forget gate, got cell " + cell);
        }
        if (layerNorm && !(cell == CellType.LSTM || cell == CellType.GRU)) {
            throw new IllegalArgumentException("layerNorm: supported for LSTM and GRU, got cell " + cell);
        }
        if ((inputDropout > 0 || recurrentDropout > 0) && !(cell == CellType.LSTM || cell == CellType.GRU)) {
            throw new IllegalArgumentException("recurrent (variational) dropout: supported for LSTM and GRU, got cell " + cell);
        }
        checkProbability("inputDropout", inputDropout);
        checkProbability("recurrentDropout", recurrentDropout);
        checkProbability("dropout", dropout);
        long maxWeight = (long) gatesFor(cell, coupledGate) * hiddenSize
                * Math.max(inputSize, Math.max(hiddenSize, (bidirectional ? 2L : 1L) * hiddenSize));
        if (maxWeight > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("hiddenSize/inputSize: a weight matrix of " + maxWeight
                    + " elements exceeds the limit of " + (Integer.MAX_VALUE - 8));
        }
    }

    private static void checkProbability(String name, double p) {
        if (!(p >= 0 && p < 1)) throw new IllegalArgumentException(name + ": expected a probability in [0, 1), got " + p);
    }

    private static int gatesFor(CellType cell, boolean coupled) {
        return cell == CellType.LSTM && coupled ? 3 : cell.gates();
    }

    /** Gate blocks G in the weight matrices: 4 (LSTM), 3 (LSTM coupled: i,g,o; GRU: r,z,n), 1 (RNN). */
    public int gates() {
        return gatesFor(cell, coupledGate);
    }

    /** D: 2 when bidirectional, else 1. */
    public int directions() {
        return bidirectional ? 2 : 1;
    }

    /** Hout: the width of h per direction (P when projected, else H). */
    public int outSize() {
        return projSize > 0 ? projSize : hiddenSize;
    }

    /** Width of a layer's (merged) output: D*Hout for concat, Hout for the other merge modes. */
    public int outputWidth() {
        return bidirectional && merge == MergeMode.CONCAT ? 2 * outSize() : outSize();
    }

    /** Input width of layer k. */
    public int layerInputSize(int layer) {
        return layer == 0 ? inputSize : outputWidth();
    }

    /** Whether layer k adds its input to its output. */
    public boolean residualAt(int layer) {
        return residual && layer >= 1;
    }

    public static Builder builder(CellType cell, int inputSize, int hiddenSize) {
        return new Builder(cell, inputSize, hiddenSize);
    }

    public Builder toBuilder() {
        Builder b = new Builder(cell, inputSize, hiddenSize);
        b.numLayers = numLayers;
        b.bidirectional = bidirectional;
        b.projSize = projSize;
        b.bias = bias;
        b.gruReset = gruReset;
        b.peephole = peephole;
        b.coupledGate = coupledGate;
        b.layerNorm = layerNorm;
        b.inputDropout = inputDropout;
        b.recurrentDropout = recurrentDropout;
        b.dropout = dropout;
        b.residual = residual;
        b.merge = merge;
        b.batchFirst = batchFirst;
        return b;
    }

    /** Builder with PyTorch's defaults: one layer, unidirectional, bias, GRU reset after, concat. */
    public static final class Builder {
        private final CellType cell;
        private final int inputSize;
        private final int hiddenSize;
        private int numLayers = 1;
        private boolean bidirectional;
        private int projSize;
        private boolean bias = true;
        private GruReset gruReset = GruReset.AFTER;
        private boolean peephole;
        private boolean coupledGate;
        private boolean layerNorm;
        private double inputDropout;
        private double recurrentDropout;
        private double dropout;
        private boolean residual;
        private MergeMode merge = MergeMode.CONCAT;
        private boolean batchFirst;

        private Builder(CellType cell, int inputSize, int hiddenSize) {
            this.cell = cell;
            this.inputSize = inputSize;
            this.hiddenSize = hiddenSize;
        }

        public Builder layers(int n) { this.numLayers = n; return this; }
        public Builder bidirectional(boolean b) { this.bidirectional = b; return this; }
        public Builder projSize(int p) { this.projSize = p; return this; }
        public Builder bias(boolean b) { this.bias = b; return this; }
        public Builder gruReset(GruReset r) { this.gruReset = r; return this; }
        public Builder peephole(boolean b) { this.peephole = b; return this; }
        public Builder coupledGate(boolean b) { this.coupledGate = b; return this; }
        public Builder layerNorm(boolean b) { this.layerNorm = b; return this; }
        public Builder inputDropout(double p) { this.inputDropout = p; return this; }
        public Builder recurrentDropout(double p) { this.recurrentDropout = p; return this; }
        public Builder dropout(double p) { this.dropout = p; return this; }
        public Builder residual(boolean b) { this.residual = b; return this; }
        public Builder merge(MergeMode m) { this.merge = m; return this; }
        public Builder batchFirst(boolean b) { this.batchFirst = b; return this; }

        public RnnConfig build() {
            return new RnnConfig(cell, inputSize, hiddenSize, numLayers, bidirectional, projSize, bias, gruReset,
                    peephole, coupledGate, layerNorm, inputDropout, recurrentDropout, dropout, residual, merge,
                    batchFirst);
        }
    }
}
