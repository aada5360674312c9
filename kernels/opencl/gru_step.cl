/* OpenCL entry points of gru_step: written once, for OpenCL and CUDA, in kernels/entry/gru_step.h. */
#include "entry/gru_step.h"
