/* OpenCL entry points of layer_norm: written once, for OpenCL and CUDA, in kernels/entry/layer_norm.h. */
#include "entry/layer_norm.h"
