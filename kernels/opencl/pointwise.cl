/* OpenCL entry points of pointwise: written once, for OpenCL and CUDA, in kernels/entry/pointwise.h. */
#include "entry/pointwise.h"
