/* CUDA entry points of decode: written once, for OpenCL and CUDA, in kernels/entry/decode.h.
 * CUDA twin of kernels/opencl/decode.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/decode.h"
