/* Dialect macros: the same kernel bodies compile as OpenCL C 1.2 and as CUDA (nvcc / NVRTC).
 *   KERNEL       entry-point qualifier           GLOBAL     global-memory pointer qualifier
 *   LOCAL_MEM    work-group shared memory         GLOBAL_ID(d)  work-item index in dimension d (0 = x)
 *   BARRIER()    work-group barrier on local memory
 *   BARRIER_ALL()  work-group barrier ordering global and local memory (single-work-group kernels)
 *   LOCAL_ID0 / LOCAL_SIZE0  work-item index and work-group size in dimension 0 (single-work-group kernels)
 *   FN           qualifier of helper functions    RESTRICT   no-alias pointer qualifier
 *   EXPF LOGF TANHF SQRTF  single-precision math;  AS_INT / AS_FLOAT  reinterpret the 32 bits;  NANF  a quiet float NaN (a result that must show)
 * Kernels never rely on the work-group size: every work item checks its indexes against the extents it
 * is given, so a host may round grids up (CUDA blocks) or let the runtime pick (OpenCL). */
#ifndef RECUR_DIALECT_H
#define RECUR_DIALECT_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL_MEM __shared__
#define FN static __device__ __forceinline__
#define RESTRICT __restrict__
#define BARRIER() __syncthreads()
#define BARRIER_ALL() __syncthreads()
#define LOCAL_ID0 ((int) threadIdx.x)
#define LOCAL_SIZE0 ((int) blockDim.x)
#define GLOBAL_ID(d) ((d) == 0 ? (int)(blockIdx.x * blockDim.x + threadIdx.x) \
                    : (d) == 1 ? (int)(blockIdx.y * blockDim.y + threadIdx.y) \
                               : (int)(blockIdx.z * blockDim.z + threadIdx.z))
typedef unsigned int uint;
#define EXPF(x) expf(x)
#define TANHF(x) tanhf(x)
#define SQRTF(x) sqrtf(x)
#define LOGF(x) logf(x)
#define NANF __int_as_float(0x7fc00000)
#define AS_INT(x) __float_as_int(x)
#define AS_FLOAT(x) __int_as_float(x)
#elif defined(__OPENCL_VERSION__)
#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL_MEM __local
#define FN static inline
#define RESTRICT restrict
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define BARRIER_ALL() barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)
#define LOCAL_ID0 ((int) get_local_id(0))
#define LOCAL_SIZE0 ((int) get_local_size(0))
#define GLOBAL_ID(d) ((int) get_global_id(d))
#define EXPF(x) exp(x)
#define TANHF(x) tanh(x)
#define SQRTF(x) sqrt(x)
#define LOGF(x) log(x)
#define NANF as_float(0x7fc00000)
#define AS_INT(x) as_int(x)
#define AS_FLOAT(x) as_float(x)
#else
#error "kernels/common: compile as OpenCL C or CUDA"
#endif

#endif
