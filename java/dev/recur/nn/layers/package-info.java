/**
 * Building blocks of models above {@link dev.recur.nn.Rnn}: {@link dev.recur.nn.layers.Parameters} (named
 * tensors with gradients, checkpoints), {@link dev.recur.nn.layers.Embedding}, {@link dev.recur.nn.layers.Linear},
 * {@link dev.recur.nn.layers.SoftmaxCrossEntropy}, {@link dev.recur.nn.layers.RecurrentLayer} (an {@code Rnn} whose
 * weights live in a {@code Parameters}) and heads: {@link dev.recur.nn.layers.SequenceClassifier} (many-to-one)
 * and {@link dev.recur.nn.layers.SequenceTagger} (many-to-many aligned). Host tensors are float64; the recurrent
 * part runs on the {@code Rnn}'s backend. Every layer has a forward and a backward that adds parameter gradients.
 */
package dev.recur.nn.layers;
