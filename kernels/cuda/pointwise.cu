/* CUDA entry points of pointwise: written once, for OpenCL and CUDA, in kernels/entry/pointwise.h.
 * CUDA twin of kernels/opencl/pointwise.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/pointwise.h"
