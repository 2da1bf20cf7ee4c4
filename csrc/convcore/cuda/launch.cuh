// Launch helpers shared by the elementwise / pooling kernels (internal).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "convcore/common.h"
#include "convcore/cuda/check.cuh"

namespace convcore {
namespace cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never
// more than the grid limit; the kernels loop over the rest.
inline unsigned grid_for(index_t n) {
  const index_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(std::max<index_t>(1, std::min<index_t>(blocks, 65535 * 8)));
}

#define CC_GRID_STRIDE(i, n)                                                            \
  for (::convcore::index_t i = ::convcore::index_t(blockIdx.x) * blockDim.x + threadIdx.x; \
       i < (n); i += ::convcore::index_t(blockDim.x) * gridDim.x)

}  // namespace cuda
}  // namespace convcore
