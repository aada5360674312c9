/* CUDA entry points of feed: written once, for OpenCL and CUDA, in kernels/entry/feed.h.
 * CUDA twin of kernels/opencl/feed.cl: the same entry points over the same kernels/common bodies (see
 * kernels/common/dialect.h); the backend rounds grids up to whole blocks and every body bounds-checks.
 */
#include "entry/feed.h"
