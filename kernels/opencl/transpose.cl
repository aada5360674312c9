/* OpenCL entry points of transpose: written once, for OpenCL and CUDA, in kernels/entry/transpose.h. */
#include "entry/transpose.h"
