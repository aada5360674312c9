/* CUDA entry points of persist: written once, for OpenCL and CUDA, in kernels/entry/persist.h.
 * CUDA twin of kernels/opencl/persist.cl: the same entry points over the same kernels/common bodies. Launch as
 * ONE block of L threads (L <= 1024; the schedule asks for 256): BARRIER_ALL() is __syncthreads(), which orders
 * global memory within the block, so the block is the whole device-side step barrier.
 */
#include "entry/persist.h"
