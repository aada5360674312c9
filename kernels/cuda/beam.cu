/* CUDA entry points of beam: written once, for OpenCL and CUDA, in kernels/entry/beam.h.
 * CUDA twin of kernels/opencl/beam.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/beam.h"
