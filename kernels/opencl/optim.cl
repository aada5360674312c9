/* OpenCL entry points of optim: written once, for OpenCL and CUDA, in kernels/entry/optim.h. */
#include "entry/optim.h"
