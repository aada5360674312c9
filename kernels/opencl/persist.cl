/* OpenCL entry points of persist: written once, for OpenCL and CUDA, in kernels/entry/persist.h. */
#include "entry/persist.h"
