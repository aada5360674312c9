/* Device-side layout changes, so that host data never has to be rearranged on the host:
 *   transpose: dst[dstOff + (c*dstLd + r)*inner + e] = beta*dst[...] + src[srcOff + (r*srcLd + c)*inner + e]
 *              for r < rows, c < cols, e < inner                                        grid {inner*cols, rows}
 * Work item (i, r) handles c = i / inner, e = i % inner: with inner = 1 consecutive work items read consecutive
 * source elements (coalesced on a GPU, and no idle lanes in a work-group of 16 or 64 on PoCL).
 * inner = 1 is a matrix transpose ([rows, cols] with row stride srcLd into [cols, rows] with row stride dstLd:
 * the transposed weight copies the forward GEMMs read); inner = F swaps the first two dimensions of
 * [rows, cols, F] (batch-first <-> time-major at the edge of a network); rows = cols = 1 with inner = n is a plain
 * copy (beta = 0) or accumulation (beta = 1) between offsets of two buffers (weight gradients written into a
 * gradient space in SET or ADD mode). beta == 0 never reads dst, so garbage or NaN there does not propagate.
 * Offsets are kernel arguments because buffers are bound whole: a view at an offset inside a larger buffer (a
 * parameter's slice of a network's weight space) is reached through them. */
#ifndef RECUR_TRANSPOSE_H
#define RECUR_TRANSPOSE_H
#include "dialect.h"

FN void transpose_body(int i, int r, int rows, int cols, int inner, GLOBAL const float* src, int src_off,
                       int src_ld, GLOBAL float* dst, int dst_off, int dst_ld, float beta) {
    if (i >= inner * cols || r >= rows) return;
    int c = i / inner, e = i - c * inner;
    float v = src[src_off + (r * src_ld + c) * inner + e];
    int o = dst_off + (c * dst_ld + r) * inner + e;
    dst[o] = beta == 0.0f ? v : beta * dst[o] + v;
}

#endif
