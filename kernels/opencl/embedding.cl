/* OpenCL entry points of embedding: written once, for OpenCL and CUDA, in kernels/entry/embedding.h. */
#include "entry/embedding.h"
