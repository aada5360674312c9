/* CUDA entry points of optim: written once, for OpenCL and CUDA, in kernels/entry/optim.h.
 * CUDA twin of kernels/opencl/optim.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/optim.h"
