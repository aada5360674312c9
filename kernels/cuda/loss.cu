/* CUDA entry points of loss: written once, for OpenCL and CUDA, in kernels/entry/loss.h.
 * CUDA twin of kernels/opencl/loss.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/loss.h"
