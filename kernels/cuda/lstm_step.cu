/* CUDA entry points of lstm_step: written once, for OpenCL and CUDA, in kernels/entry/lstm_step.h.
 * Under nvcc/NVRTC, kernels/common/dialect.h makes KERNEL extern "C" __global__ and GLOBAL_ID(d) the
 * block/thread index. CudaBackend launches blocks of up to 256 threads over the grid rounded up (every
 * body bounds-checks its indexes); native/build-cuda.sh checks each for warnings, doubles and spills.
 */
#include "entry/lstm_step.h"
