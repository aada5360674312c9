/* CUDA entry points of sample: written once, for OpenCL and CUDA, in kernels/entry/sample.h.
 * CUDA twin of kernels/opencl/sample.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/sample.h"
