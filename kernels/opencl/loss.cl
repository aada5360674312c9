/* OpenCL entry points of loss: written once, for OpenCL and CUDA, in kernels/entry/loss.h. */
#include "entry/loss.h"
