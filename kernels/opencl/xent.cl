/* OpenCL entry points of xent: written once, for OpenCL and CUDA, in kernels/entry/xent.h. */
#include "entry/xent.h"
