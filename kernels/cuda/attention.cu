/* CUDA entry points of attention: written once, for OpenCL and CUDA, in kernels/entry/attention.h.
 * Under nvcc/NVRTC, kernels/common/dialect.h makes KERNEL extern "C" __global__ and GLOBAL_ID(d) the
 * block/thread index. The backend rounds grids up to whole blocks; every body bounds-checks its indexes.
 */
#include "entry/attention.h"
