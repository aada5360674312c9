/* OpenCL entry points of pool: written once, for OpenCL and CUDA, in kernels/entry/pool.h. */
#include "entry/pool.h"
