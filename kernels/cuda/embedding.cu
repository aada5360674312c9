/* CUDA entry points of embedding: written once, for OpenCL and CUDA, in kernels/entry/embedding.h.
 * CUDA twin of kernels/opencl/embedding.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/embedding.h"
