/* OpenCL entry points of attention: written once, for OpenCL and CUDA, in kernels/entry/attention.h. */
#include "entry/attention.h"
