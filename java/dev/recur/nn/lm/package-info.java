/**
 * Recurrent language models (next-token prediction and generation): {@link dev.recur.nn.lm.LanguageModel}.
 */
package dev.recur.nn.lm;
