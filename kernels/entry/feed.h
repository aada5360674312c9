/* scheduled_feed: the decoder's next input under scheduled sampling, the true previous token or the model's own
 * prediction by a counter-based coin keyed by (seed, step, row).
 *   scheduled_feed  next[out_off+r] = bits(seed, step, r) < threshold ? target[tgt_off+r] : pred[r]   grid {N}
 * Body in kernels/common/feed.h; launch checks in dev.recur.backend.TrainKernels. */
#include "common/feed.h"

KERNEL void scheduled_feed(int N, int threshold, int seed_lo, int seed_hi, int step, GLOBAL const int* target,
                           int tgt_off, GLOBAL const int* pred, GLOBAL int* next, int out_off) {
    scheduled_feed_body(GLOBAL_ID(0), N, threshold, seed_lo, seed_hi, step, target, tgt_off, pred, next, out_off);
}
