// Helpers for code that is compiled for the GPU and, unchanged, for the host
// emulation in tests/cuda_host/ (which checks kernel index math on machines
// without a GPU). Internal.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace convcore {
namespace cuda {
namespace detail {

using i64 = std::int64_t;

// Read-only loads through the texture path on the GPU; plain loads when the
// same code runs on the host (tests/cuda_host/).
#ifdef __CUDA_ARCH__
#define CC_LDG(p) __ldg(p)
#else
#define CC_LDG(p) (*(p))
#endif

// Store that adds: atomic on the GPU; the host emulation runs blocks one at
// a time and never has two threads add to one address at once.
__host__ __device__ inline void add_to(float* p, float v) {
#ifdef __CUDA_ARCH__
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
