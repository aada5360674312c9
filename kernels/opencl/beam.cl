/* OpenCL entry points of beam: written once, for OpenCL and CUDA, in kernels/entry/beam.h. */
#include "entry/beam.h"
