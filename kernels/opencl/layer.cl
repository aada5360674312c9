/* OpenCL entry points of layer: written once, for OpenCL and CUDA, in kernels/entry/layer.h. */
#include "entry/layer.h"
