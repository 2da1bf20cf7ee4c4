// Pooling kernels: one thread per output element (forward); the backward
// passes scatter into a zeroed gradient with atomics, which is exact for
// non-overlapping windows and order-dependent (last-bit) for overlapping ones.
#include <cmath>

#include "convcore/cuda/activation.h"
#include "convcore/cuda/launch.cuh"
#include "convcore/cuda/pool.h"

namespace convcore {
namespace cuda {

namespace {

using i64 = index_t;

struct PoolDims {
  int H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, OH, OW;
  bool count_include_pad;
  i64 planes;  // N*C
};

PoolDims pool_dims(const char* op, const Pool2dParams& p) {
  if (p.H * p.W > 0x7fffffff || p.OH * p.OW > 0x7fffffff || p.kh > 0x7fffffff ||
      p.kw > 0x7fffffff || p.dil_h * p.kh > 0x7fffffff || p.dil_w * p.kw > 0x7fffffff)
    fail(op, "plane too large for the CUDA kernels' 32-bit index range");
  PoolDims d;
  d.H = int(p.H); d.W = int(p.W); d.kh = int(p.kh); d.kw = int(p.kw);
  d.sh = int(p.stride_h); d.sw = int(p.stride_w);
  d.pt = int(p.pad_t); d.pl = int(p.pad_l); d.pb = int(p.pad_b); d.pr = int(p.pad_r);
  d.dh = int(p.dil_h); d.dw = int(p.dil_w); d.OH = int(p.OH); d.OW = int(p.OW);
  d.count_include_pad = p.count_include_pad;
  d.planes = p.N * p.C;
  return d;
}

__device__ inline int first_in(int start, int dil) { return start >= 0 ? 0 : (-start + dil - 1) / dil; }

// Window max with the CPU kernel's rules: NaN sticks, ties keep the first.
__device__ inline void window_max(const PoolDims& d, const float* xp, int oh, int ow, float& best,
                                  int& arg) {
  best = -INFINITY;
  arg = -1;
  const int hs = oh * d.sh - d.pt, ws = ow * d.sw - d.pl;
  for (int i = first_in(hs, d.dh); i < d.kh; ++i) {
    const int ih = hs + i * d.dh;
    if (ih >= d.H) break;
    for (int j = first_in(ws, d.dw); j < d.kw; ++j) {
      const int iw = ws + j * d.dw;
      if (iw >= d.W) break;
      const float v = __ldg(xp + ih * d.W + iw);
      if ((v > best || v != v || arg < 0) && !(best != best)) {
        best = v;
        arg = ih * d.W + iw;
      }
    }
  }
}

__global__ void max_fwd(PoolDims d, const float* __restrict__ x, float* __restrict__ y,
                        i64* __restrict__ ind) {
  const i64 ohw = i64(d.OH) * d.OW, total = d.planes * ohw;
  CC_GRID_STRIDE(i, total) {
    const i64 nc = i / ohw;
    const int o = int(i - nc * ohw), oh = o / d.OW, ow = o - oh * d.OW;
    float best;
    int arg;
    window_max(d, x + nc * d.H * i64(d.W), oh, ow, best, arg);
    y[i] = best;
    if (ind) ind[i] = arg;
  }
}

__global__ void max_bwd(PoolDims d, const float* __restrict__ gy, const float* __restrict__ x,
                        float* __restrict__ gx) {
  const i64 ohw = i64(d.OH) * d.OW, hw = i64(d.H) * d.W, total = d.planes * ohw;
  CC_GRID_STRIDE(i, total) {
    const i64 nc = i / ohw;
    const int o = int(i - nc * ohw), oh = o / d.OW, ow = o - oh * d.OW;
    float best;
    int arg;
    window_max(d, x + nc * hw, oh, ow, best, arg);
    if (arg >= 0) atomicAdd(gx + nc * hw + arg, gy[i]);
  }
}

// Divisor of one average window, as in the CPU kernel (PyTorch's rule).
__device__ inline int avg_divisor(const PoolDims& d, int hs, int ws) {
  if (d.count_include_pad) {
    const int he = min(hs + d.kh, d.H + d.pb), we = min(ws + d.kw, d.W + d.pr);
    return (he - hs) * (we - ws);
  }
  const int h0 = max(hs, 0), w0 = max(ws, 0);
  const int h1 = min(hs + d.kh, d.H), w1 = min(ws + d.kw, d.W);
  return max(0, h1 - h0) * max(0, w1 - w0);
}

__global__ void avg_fwd(PoolDims d, const float* __restrict__ x, float* __restrict__ y) {
  const i64 ohw = i64(d.OH) * d.OW, total = d.planes * ohw;
  CC_GRID_STRIDE(i, total) {
    const i64 nc = i / ohw;
    const int o = int(i - nc * ohw), oh = o / d.OW, ow = o - oh * d.OW;
    const float* xp = x + nc * d.H * i64(d.W);
    const int hs = oh * d.sh - d.pt, ws = ow * d.sw - d.pl;
    const int h0 = max(hs, 0), h1 = min(hs + d.kh, d.H);
    const int w0 = max(ws, 0), w1 = min(ws + d.kw, d.W);
    float s = 0.f;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) s += __ldg(xp + ih * d.W + iw);
    const int div = avg_divisor(d, hs, ws);
    y[i] = div > 0 ? s / float(div) : 0.f;
  }
}

__global__ void avg_bwd(PoolDims d, const float* __restrict__ gy, float* __restrict__ gx) {
  const i64 ohw = i64(d.OH) * d.OW, hw = i64(d.H) * d.W, total = d.planes * ohw;
  CC_GRID_STRIDE(i, total) {
    const i64 nc = i / ohw;
    const int o = int(i - nc * ohw), oh = o / d.OW, ow = o - oh * d.OW;
    const int hs = oh * d.sh - d.pt, ws = ow * d.sw - d.pl;
    const int div = avg_divisor(d, hs, ws);
    if (div <= 0) continue;
    const float g = gy[i] / float(div);
    const int h0 = max(hs, 0), h1 = min(hs + d.kh, d.H);
    const int w0 = max(ws, 0), w1 = min(ws + d.kw, d.W);
    float* gp = gx + nc * hw;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) atomicAdd(gp + ih * d.W + iw, g);
  }
}

// Global pooling: one warp per (n, c) plane.
constexpr int kWarps = kThreads / 32;

__global__ void global_fwd(i64 planes, i64 HW, const float* __restrict__ x, float* __restrict__ y,
                           bool is_max) {
  const int lane = threadIdx.x % 32;
  for (i64 pl = i64(blockIdx.x) * kWarps + threadIdx.x / 32; pl < planes;
       pl += i64(gridDim.x) * kWarps) {
    const float* r = x + pl * HW;
    if (is_max) {
      // (value, index) pairs so the first NaN / first max wins, as on the CPU.
      float m = -INFINITY;
      i64 a = -1;
      for (i64 j = lane; j < HW; j += 32) {
        const float v = r[j];
        if (a < 0 || ((v > m || v != v) && m == m)) { m = v; a = j; }
      }
      for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_down_sync(0xffffffffu, m, o);
        const i64 a2 = __shfl_down_sync(0xffffffffu, a, o);
        if (a2 >= 0 && (a < 0 || (m2 != m2 && m == m) || (m == m && m2 > m) ||
                        ((m2 == m || (m2 != m2 && m != m)) && a2 < a))) {
          m = m2; a = a2;
        }
      }
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

// One warp per plane: find the first max (NaN first), write the plane.
__global__ void global_max_bwd(i64 planes, i64 HW, const float* __restrict__ gy,
                               const float* __restrict__ x, float* __restrict__ gx) {
  const int lane = threadIdx.x % 32;
  for (i64 pl = i64(blockIdx.x) * kWarps + threadIdx.x / 32; pl < planes;
       pl += i64(gridDim.x) * kWarps) {
    const float* r = x + pl * HW;
    float m = -INFINITY;
    i64 a = -1;
    for (i64 j = lane; j < HW; j += 32) {
      const float v = r[j];
      if (a < 0 || ((v > m || v != v) && m == m)) { m = v; a = j; }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float m2 = __shfl_down_sync(0xffffffffu, m, o);
      const i64 a2 = __shfl_down_sync(0xffffffffu, a, o);
      if (a2 >= 0 && (a < 0 || (m2 != m2 && m == m) || (m == m && m2 > m) ||
                      ((m2 == m || (m2 != m2 && m != m)) && a2 < a))) {
        m = m2; a = a2;
      }
    }
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
  if (p.y_size() == 0) return;
  max_fwd<<<grid_for(p.y_size()), kThreads>>>(d, x, y, ind);
  CC_CUDA_CHECK_LAUNCH("max_pool2d");
}

void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x, float* gx) {
  const PoolDims d = pool_dims("max_pool2d_backward", p);
  fill_zero(p.x_size(), gx);
  if (p.y_size() == 0) return;
  max_bwd<<<grid_for(p.y_size()), kThreads>>>(d, gy, x, gx);
  CC_CUDA_CHECK_LAUNCH("max_pool2d_backward");
}

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const PoolDims d = pool_dims("avg_pool2d", p);
  if (p.y_size() == 0) return;
  avg_fwd<<<grid_for(p.y_size()), kThreads>>>(d, x, y);
  CC_CUDA_CHECK_LAUNCH("avg_pool2d");
}

void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const PoolDims d = pool_dims("avg_pool2d_backward", p);
  fill_zero(p.x_size(), gx);
  if (p.y_size() == 0) return;
  avg_bwd<<<grid_for(p.y_size()), kThreads>>>(d, gy, gx);
  CC_CUDA_CHECK_LAUNCH("avg_pool2d_backward");
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
