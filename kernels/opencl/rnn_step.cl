/* OpenCL entry points of rnn_step: written once, for OpenCL and CUDA, in kernels/entry/rnn_step.h. */
#include "entry/rnn_step.h"
