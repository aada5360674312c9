/* OpenCL entry points of feed: written once, for OpenCL and CUDA, in kernels/entry/feed.h. */
#include "entry/feed.h"
