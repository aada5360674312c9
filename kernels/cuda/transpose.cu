/* CUDA entry points of transpose: written once, for OpenCL and CUDA, in kernels/entry/transpose.h.
 * CUDA twin of kernels/opencl/transpose.cl over the same kernels/common body.
 */
#include "entry/transpose.h"
