/* Scheduled sampling's decoder input (Bengio et al. 2015), chosen on the device so that a training step with teacher
 * forcing below 1 never reads its predictions back.
 *   row r of decoder step s (s >= 1):
 *     next[out_off + r] = bits(seed, s, r) < threshold ? target[tgt_off + r] : pred[r]
 *   bits(seed, s, r) = the 24 random bits of sample.h's uniform(seed, s, r) (uniform = bits * 2^-24), so
 *   "bits < threshold" with threshold = ceil(tf * 2^24) (in [0, 2^24]) is exactly "uniform(seed, s, r) < tf" for a
 *   teacher-forcing probability tf in [0, 1]: the float64 host compares the same uniform with tf and flips the same
 *   coin, bit for bit (TrainKernels.scheduledFeed computes the threshold).
 *   target: the true previous tokens (step s-1 of the time-major targets), pred: the model's argmax of step s-1
 *   (argmax_rows), both I32; the chosen token is a constant for the gradient.
 * scheduled_feed grid {N}: one work item per row; a coin is a function of (seed, s, r) alone.
 * Integer operations only: every backend and the reference agree exactly. */
#ifndef RECUR_FEED_H
#define RECUR_FEED_H
#include "dialect.h"
#include "sample.h"

FN uint recur_sample_bits(uint seed_lo, uint seed_hi, uint step, uint row) {
    recur_u64 k = recur_mix64(((recur_u64) seed_hi << 32) | (recur_u64) seed_lo);
    recur_u64 c = ((recur_u64) step << 32) | (recur_u64) row;
    recur_u64 h = recur_mix64(k + (c + 1UL) * 0x9E3779B97F4A7C15UL);
    return (uint) (h >> 40);
}

FN void scheduled_feed_body(int r, int N, int threshold, int seed_lo, int seed_hi, int step, GLOBAL const int* target,
                            int tgt_off, GLOBAL const int* pred, GLOBAL int* next, int out_off) {
    if (r >= N) return;
    uint bits = recur_sample_bits((uint) seed_lo, (uint) seed_hi, (uint) step, (uint) r);
    next[out_off + r] = bits < (uint) threshold ? target[tgt_off + r] : pred[r];
}

#endif
