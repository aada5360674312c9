/**
 * Encoder-decoder models: {@link dev.recur.nn.seq2seq.Seq2Seq} configured by
 * {@link dev.recur.nn.seq2seq.Seq2SeqConfig} (encoder, decoder, {@link dev.recur.nn.seq2seq.Bridge},
 * {@link dev.recur.nn.seq2seq.AttentionStyle} with a {@link dev.recur.config.AttentionScore}), trained on
 * padded {@link dev.recur.nn.seq2seq.Seq2SeqBatch}es with teacher forcing or scheduled sampling
 * ({@link dev.recur.nn.seq2seq.Seq2SeqTrainer}) and decoded through {@link dev.recur.nn.decode}.
 */
package dev.recur.nn.seq2seq;
