/* CUDA entry points of layer: written once, for OpenCL and CUDA, in kernels/entry/layer.h.
 * Under nvcc/NVRTC, kernels/common/dialect.h makes KERNEL extern "C" __global__ and GLOBAL_ID(d) the
 * block/thread index. CudaBackend launches blocks of up to 256 threads over the grid rounded up (every
 * body bounds-checks its indexes); native/build-cuda.sh checks each for warnings, doubles and spills.
 */
#include "entry/layer.h"
