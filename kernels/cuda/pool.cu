/* CUDA entry points of pool: written once, for OpenCL and CUDA, in kernels/entry/pool.h.
 * CUDA twin of kernels/opencl/pool.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/pool.h"
