/* OpenCL entry points of lstm_step: written once, for OpenCL and CUDA, in kernels/entry/lstm_step.h. */
#include "entry/lstm_step.h"
