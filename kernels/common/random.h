/* DropoutMask's counter-based random numbers (dev.recur.config.DropoutMask), bit for bit:
 *   mix(x)  = x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16   (uint32)
 *   bits(seed, stream, index) = mix(mix(mix(lo ^ mix(hi)) ^ stream) ^ index) >> 8      (24 bits)
 *   mask = thresh == 0 ? 1 : (bits >= thresh ? scale : 0), thresh = ceil(p*2^24), scale = 1/(1-p)
 *   stream(layer, direction, kind) = (layer*2 + direction)*4 + kind; kind INPUT 0, RECURRENT 1, BETWEEN 2 */
#ifndef RECUR_RANDOM_H
#define RECUR_RANDOM_H
#include "dialect.h"

#define RECUR_DROP_INPUT 0
#define RECUR_DROP_RECURRENT 1
#define RECUR_DROP_BETWEEN 2

FN uint recur_mix(uint x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

FN uint recur_bits(int seed_lo, int seed_hi, int stream, int index) {
    uint h = recur_mix((uint) seed_lo ^ recur_mix((uint) seed_hi));
    h = recur_mix(h ^ (uint) stream);
    h = recur_mix(h ^ (uint) index);
    return h >> 8;
}

FN int recur_stream(int layer, int direction, int kind) {
    return (layer * 2 + direction) * 4 + kind;
}

FN float recur_mask(int seed_lo, int seed_hi, int stream, int index, int thresh, float scale) {
    if (thresh == 0) return 1.0f;
    return recur_bits(seed_lo, seed_hi, stream, index) >= (uint) thresh ? scale : 0.0f;
}

#endif
