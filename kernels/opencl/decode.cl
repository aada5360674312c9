/* OpenCL entry points of decode: written once, for OpenCL and CUDA, in kernels/entry/decode.h. */
#include "entry/decode.h"
