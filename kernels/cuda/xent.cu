/* CUDA entry points of xent: written once, for OpenCL and CUDA, in kernels/entry/xent.h.
 * CUDA twin of kernels/opencl/xent.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/xent.h"
