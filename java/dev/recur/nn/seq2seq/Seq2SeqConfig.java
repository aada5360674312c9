package dev.recur.nn.seq2seq;

import dev.recur.config.AttentionConfig;
import dev.recur.config.AttentionScore;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;

/**
 * The shape of a {@link Seq2Seq} model. Build with {@link #builder(int, int)}; validated on construction.
 *
 * @param sourceVocab   source token ids are in [0, sourceVocab)
 * @param targetVocab   target token ids are in [0, targetVocab)
 * @param embeddingSize E, the width of both token embeddings
 * @param encoder       the encoder network (input size E; any cell, layers, bidirectional, projection, dropout)
 * @param decoder       the decoder network: unidirectional, no projection, input size E (+ the encoder output
 *                      width for {@link AttentionStyle#BAHDANAU})
 * @param style         where attention enters
 * @param score         the attention score (ignored for {@link AttentionStyle#NONE})
 * @param attentionSize A for additive scores, else 0
 * @param combineSize   width of {@code tanh(W_c [h; c])} before the output layer
 * @param bridge        encoder-to-decoder state bridge
 * @param padId         padding id in both vocabularies (its embedding rows stay 0; not counted in the loss)
 * @param bosId         target start token fed at the first decoder step
 * @param eosId         target end token appended to every target sequence
 */
public record Seq2SeqConfig(int sourceVocab, int targetVocab, int embeddingSize, RnnConfig encoder, RnnConfig decoder,
                            AttentionStyle style, AttentionScore score, int attentionSize, int combineSize, Bridge bridge,
                            int padId, int bosId, int eosId) {
    public Seq2SeqConfig {
        if (sourceVocab <= 0) throw new IllegalArgumentException("sourceVocab: expected > 0, got " + sourceVocab);
        if (targetVocab <= 0) throw new IllegalArgumentException("targetVocab: expected > 0, got " + targetVocab);
        if (embeddingSize <= 0) throw new IllegalArgumentException("embeddingSize: expected > 0, got " + embeddingSize);
        if (encoder == null) throw new IllegalArgumentException("encoder: must not be null");
        if (decoder == null) throw new IllegalArgumentException("decoder: must not be null");
        if (style == null) throw new IllegalArgumentException("style: must not be null");
        if (bridge == null) throw new IllegalArgumentException("bridge: must not be null");
        if (style != AttentionStyle.NONE && score == null) throw new IllegalArgumentException("score: must not be null with attention " + style);
        if (combineSize <= 0) throw new IllegalArgumentException("combineSize: expected > 0, got " + combineSize);
        if (encoder.inputSize() != embeddingSize) {
            throw new IllegalArgumentException("encoder: expected inputSize " + embeddingSize + " (embeddingSize), got " + encoder.inputSize());
        }
        if (encoder.batchFirst() || decoder.batchFirst()) throw new IllegalArgumentException("encoder/decoder: expected time-major (batchFirst false)");
        if (decoder.bidirectional()) throw new IllegalArgumentException("decoder: expected unidirectional, got bidirectional");
        if (decoder.projSize() != 0) throw new IllegalArgumentException("decoder: expected projSize 0, got " + decoder.projSize());
        int decIn = embeddingSize + (style == AttentionStyle.BAHDANAU ? encoder.outputWidth() : 0);
        if (decoder.inputSize() != decIn) {
            throw new IllegalArgumentException("decoder: expected inputSize " + decIn + " (embedding" + (style == AttentionStyle.BAHDANAU
                    ? " + encoder output width" : "") + "), got " + decoder.inputSize());
        }
        if (style != AttentionStyle.NONE) attentionConfig(score, decoder.hiddenSize(), encoder.outputWidth(), attentionSize);
        if (bridge == Bridge.SUM) {
            if (encoder.outSize() != decoder.hiddenSize()) {
                throw new IllegalArgumentException("bridge: SUM needs the encoder's per-direction width (" + encoder.outSize()
                        + ") equal to the decoder's hiddenSize, got " + decoder.hiddenSize());
            }
            if (encoder.cell() == CellType.LSTM && decoder.cell() == CellType.LSTM && encoder.hiddenSize() != decoder.hiddenSize()) {
                throw new IllegalArgumentException("bridge: SUM needs the encoder's cell width (" + encoder.hiddenSize()
                        + ") equal to the decoder's hiddenSize, got " + decoder.hiddenSize());
            }
        }
        checkId("padId", padId, Math.min(sourceVocab, targetVocab));
        checkId("bosId", bosId, targetVocab);
        checkId("eosId", eosId, targetVocab);
        if (bosId == padId || eosId == padId) {
            throw new IllegalArgumentException("bosId/eosId: must differ from padId " + padId + ", got " + bosId + "/" + eosId);
        }
    }

    private static void checkId(String name, int id, int vocab) {
        if (id < 0 || id >= vocab) throw new IllegalArgumentException(name + ": expected in [0, " + vocab + "), got " + id);
    }

    private static AttentionConfig attentionConfig(AttentionScore score, int hd, int he, int a) {
        return new AttentionConfig(score, hd, he, score == AttentionScore.ADDITIVE ? a : 0);
    }

    /** The attention layer's configuration (query: decoder hidden size; keys: encoder output width); null without attention. */
    public AttentionConfig attentionConfig() {
        return style == AttentionStyle.NONE ? null : attentionConfig(score, decoder.hiddenSize(), encoder.outputWidth(), attentionSize);
    }

    public static Builder builder(int sourceVocab, int targetVocab) {
        return new Builder(sourceVocab, targetVocab);
    }

    /**
     * Defaults: embedding 32; encoder and decoder one-layer GRU of 64; Luong attention with general scores;
     * combine size = decoder hidden size; bridge LINEAR_TANH; pad 0, bos 1, eos 2.
     */
    public static final class Builder {
        private final int sourceVocab;
        private final int targetVocab;
        private int embeddingSize = 32;
        private RnnConfig encoder;
        private CellType encCell = CellType.GRU;
        private int encHidden = 64;
        private int encLayers = 1;
        private boolean encBidirectional;
        private RnnConfig decoder;
        private CellType decCell = CellType.GRU;
        private int decHidden = 64;
        private int decLayers = 1;
        private AttentionStyle style = AttentionStyle.LUONG;
        private AttentionScore score = AttentionScore.GENERAL;
        private int attentionSize;
        private int combineSize;
        private Bridge bridge = Bridge.LINEAR_TANH;
        private int padId = 0;
        private int bosId = 1;
        private int eosId = 2;

        private Builder(int sourceVocab, int targetVocab) {
            this.sourceVocab = sourceVocab;
            this.targetVocab = targetVocab;
        }

        public Builder embedding(int size) { this.embeddingSize = size; return this; }

        /** A plain encoder of this shape (input size set to the embedding size at build). */
        public Builder encoder(CellType cell, int hidden, int layers, boolean bidirectional) {
            this.encCell = cell; this.encHidden = hidden; this.encLayers = layers; this.encBidirectional = bidirectional;
            this.encoder = null;
            return this;
        }

        /** A fully specified encoder (dropout, layer norm, projection...); its inputSize must be the embedding size. */
        public Builder encoder(RnnConfig config) { this.encoder = config; return this; }

        /** A plain decoder of this shape (input size derived at build). */
        public Builder decoder(CellType cell, int hidden, int layers) {
            this.decCell = cell; this.decHidden = hidden; this.decLayers = layers;
            this.decoder = null;
            return this;
        }

        /** A fully specified decoder; its inputSize must be what {@link Seq2SeqConfig} expects. */
        public Builder decoder(RnnConfig config) { this.decoder = config; return this; }

        public Builder attention(AttentionStyle style, AttentionScore score) { this.style = style; this.score = score; return this; }
        /** A for additive scores (default: the decoder hidden size). */
        public Builder attentionSize(int a) { this.attentionSize = a; return this; }
        public Builder combineSize(int c) { this.combineSize = c; return this; }
        public Builder bridge(Bridge b) { this.bridge = b; return this; }
        public Builder tokens(int pad, int bos, int eos) { this.padId = pad; this.bosId = bos; this.eosId = eos; return this; }

        public Seq2SeqConfig build() {
            RnnConfig enc = encoder != null ? encoder
                    : RnnConfig.builder(encCell, embeddingSize, encHidden).layers(encLayers).bidirectional(encBidirectional).build();
            int decIn = embeddingSize + (style == AttentionStyle.BAHDANAU ? enc.outputWidth() : 0);
            RnnConfig dec = decoder != null ? decoder : RnnConfig.builder(decCell, decIn, decHidden).layers(decLayers).build();
            int a = score == AttentionScore.ADDITIVE ? (attentionSize > 0 ? attentionSize : dec.hiddenSize()) : 0;
            int c = combineSize > 0 ? combineSize : dec.hiddenSize();
            return new Seq2SeqConfig(sourceVocab, targetVocab, embeddingSize, enc, dec, style, score, a, c, bridge, padId, bosId, eosId);
        }
    }
}
