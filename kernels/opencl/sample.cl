/* OpenCL entry points of sample: written once, for OpenCL and CUDA, in kernels/entry/sample.h. */
#include "entry/sample.h"
