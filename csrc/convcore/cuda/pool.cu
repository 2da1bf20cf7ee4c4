// Pooling kernels: one thread per output element (the bodies are in
// pool_ops.cuh, shared with the host emulation test). The backward passes
// scatter into a zeroed gradient with atomics: exact for non-overlapping
// windows, order-dependent in the last bits for overlapping ones.
#include <algorithm>

#include "convcore/cuda/activation.h"
#include "convcore/cuda/launch.cuh"
#include "convcore/cuda/pool.h"
#include "convcore/cuda/pool_ops.cuh"

namespace convcore {
namespace cuda {

using namespace detail;

namespace {

#define CC_GRID_STRIDE32(i, n) \
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

__global__ void max_fwd(PoolDims d, const float* __restrict__ x, float* __restrict__ y,
                        i64* __restrict__ ind, int total) {
  CC_GRID_STRIDE32(i, total) max_fwd_at(d, x, y, ind, i);
}

__global__ void max_bwd(PoolDims d, const float* __restrict__ gy, const float* __restrict__ x,
                        float* __restrict__ gx, int total) {
  CC_GRID_STRIDE32(i, total) max_bwd_at(d, gy, x, gx, i);
}

__global__ void avg_fwd(PoolDims d, const float* __restrict__ x, float* __restrict__ y, int total) {
  CC_GRID_STRIDE32(i, total) avg_fwd_at(d, x, y, i);
}

__global__ void avg_bwd(PoolDims d, const float* __restrict__ gy, float* __restrict__ gx,
                        int total) {
  CC_GRID_STRIDE32(i, total) avg_bwd_at(d, gy, gx, i);
}

// Runs fn(chunk dims, first plane, outputs in chunk) over chunks of planes
// whose outputs have 32-bit flat indices (with a margin for grid strides).
template <class F>
void for_plane_chunks(const PoolDims& d, F fn) {
  constexpr i64 kLimit = (i64(1) << 31) - (i64(1) << 28);
  const i64 ohw = i64(d.OH) * d.OW;
  if (ohw == 0) return;
  const i64 chunk = std::max<i64>(1, kLimit / ohw);
  for (i64 p0 = 0; p0 < d.planes; p0 += chunk) {
    PoolDims c = d;
    c.planes = std::min(chunk, d.planes - p0);
    fn(c, p0, c.planes * ohw);
  }
}

// Global pooling: one warp per (n, c) plane.
constexpr int kWarps = kThreads / 32;

__device__ inline void warp_argmax(const float* r, i64 HW, float& m, i64& a) {
  const int lane = threadIdx.x % 32;
  m = -INFINITY;
  a = -1;
  for (i64 j = lane; j < HW; j += 32) argmax_take(m, a, r[j], j);
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_down_sync(0xffffffffu, m, o);
    const i64 a2 = __shfl_down_sync(0xffffffffu, a, o);
    argmax_merge(m, a, m2, a2);
  }
}

__global__ void global_fwd(i64 planes, i64 HW, const float* __restrict__ x, float* __restrict__ y,
                           bool is_max) {
  const int lane = threadIdx.x % 32;
  for (i64 pl = i64(blockIdx.x) * kWarps + threadIdx.x / 32; pl < planes;
       pl += i64(gridDim.x) * kWarps) {
    const float* r = x + pl * HW;
    if (is_max) {
      float m;
      i64 a;
      warp_argmax(r, HW, m, a);
      if (lane == 0) y[pl] = m;
    } else {
      float s = 0.f;
      for (i64 j = lane; j < HW; j += 32) s += r[j];
      for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
      if (lane == 0) y[pl] = s / float(HW);
    }
  }
}

__global__ void global_avg_bwd(i64 planes, i64 HW, const float* __restrict__ gy,
                               float* __restrict__ gx) {
  const i64 total = planes * HW;
  CC_GRID_STRIDE(i, total) { gx[i] = gy[i / HW] / float(HW); }
}

// One warp per plane: find the first max (NaN first), write the whole plane.
__global__ void global_max_bwd(i64 planes, i64 HW, const float* __restrict__ gy,
                               const float* __restrict__ x, float* __restrict__ gx) {
  const int lane = threadIdx.x % 32;
  for (i64 pl = i64(blockIdx.x) * kWarps + threadIdx.x / 32; pl < planes;
       pl += i64(gridDim.x) * kWarps) {
    float m;
    i64 a;
    warp_argmax(x + pl * HW, HW, m, a);
    a = __shfl_sync(0xffffffffu, a, 0);
    const float g = gy[pl];
    for (i64 j = lane; j < HW; j += 32) gx[pl * HW + j] = j == a ? g : 0.f;
  }
}

unsigned warp_grid(i64 planes) {
  const i64 b = (planes + kWarps - 1) / kWarps;
  return unsigned(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

}  // namespace

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y, index_t* ind) {
  const PoolDims d = pool_dims("max_pool2d", p);
  const i64 hw = i64(d.H) * d.W, ohw = i64(d.OH) * d.OW;
  for_plane_chunks(d, [&](const PoolDims& c, i64 p0, i64 n) {
    max_fwd<<<grid_for(n), kThreads>>>(c, x + p0 * hw, y + p0 * ohw, ind ? ind + p0 * ohw : nullptr,
                                       int(n));
    CC_CUDA_CHECK_LAUNCH("max_pool2d");
  });
}

void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x, float* gx) {
  const PoolDims d = pool_dims("max_pool2d_backward", p);
  fill_zero(p.x_size(), gx);
  const i64 hw = i64(d.H) * d.W, ohw = i64(d.OH) * d.OW;
  for_plane_chunks(d, [&](const PoolDims& c, i64 p0, i64 n) {
    max_bwd<<<grid_for(n), kThreads>>>(c, gy + p0 * ohw, x + p0 * hw, gx + p0 * hw, int(n));
    CC_CUDA_CHECK_LAUNCH("max_pool2d_backward");
  });
}

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const PoolDims d = pool_dims("avg_pool2d", p);
  const i64 hw = i64(d.H) * d.W, ohw = i64(d.OH) * d.OW;
  for_plane_chunks(d, [&](const PoolDims& c, i64 p0, i64 n) {
    avg_fwd<<<grid_for(n), kThreads>>>(c, x + p0 * hw, y + p0 * ohw, int(n));
    CC_CUDA_CHECK_LAUNCH("avg_pool2d");
  });
}

void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const PoolDims d = pool_dims("avg_pool2d_backward", p);
  fill_zero(p.x_size(), gx);
  const i64 hw = i64(d.H) * d.W, ohw = i64(d.OH) * d.OW;
  for_plane_chunks(d, [&](const PoolDims& c, i64 p0, i64 n) {
    avg_bwd<<<grid_for(n), kThreads>>>(c, gy + p0 * ohw, gx + p0 * hw, int(n));
    CC_CUDA_CHECK_LAUNCH("avg_pool2d_backward");
  });
}

void global_avg_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y) {
  if (N * C == 0) return;
  global_fwd<<<warp_grid(N * C), kThreads>>>(N * C, HW, x, y, false);
  CC_CUDA_CHECK_LAUNCH("global_avg_pool2d");
}

void global_max_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y) {
  if (N * C == 0) return;
  global_fwd<<<warp_grid(N * C), kThreads>>>(N * C, HW, x, y, true);
  CC_CUDA_CHECK_LAUNCH("global_max_pool2d");
}

void global_avg_pool2d_backward(index_t N, index_t C, index_t HW, const float* gy, float* gx) {
  if (N * C * HW == 0) return;
  global_avg_bwd<<<grid_for(N * C * HW), kThreads>>>(N * C, HW, gy, gx);
  CC_CUDA_CHECK_LAUNCH("global_avg_pool2d_backward");
}

void global_max_pool2d_backward(index_t N, index_t C, index_t HW, const float* gy, const float* x,
                                float* gx) {
  if (N * C == 0) return;
  global_max_bwd<<<warp_grid(N * C), kThreads>>>(N * C, HW, gy, x, gx);
  CC_CUDA_CHECK_LAUNCH("global_max_pool2d_backward");
}

}  // namespace cuda
}  // namespace convcore
