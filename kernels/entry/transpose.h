/* Layout changes on the device (equations in kernels/common/transpose.h): transpose {inner*cols, rows}. */
#include "common/transpose.h"

KERNEL void transpose(int rows, int cols, int inner, GLOBAL const float* src, int src_off, int src_ld,
                      GLOBAL float* dst, int dst_off, int dst_ld, float beta) {
    transpose_body(GLOBAL_ID(0), GLOBAL_ID(1), rows, cols, inner, src, src_off, src_ld, dst, dst_off,
                   dst_ld, beta);
}
