// Pooling index math shared by the kernels (pool.cu) and the host emulation
// (tests/cuda_host/): the same per-element functions run on both. Internal.
#pragma once
#include <limits>

#include "convcore/common.h"
#include "convcore/cuda/hostdev.cuh"
#include "convcore/params.h"

namespace convcore {
namespace cuda {
namespace detail {

__host__ __device__ inline int cmin(int a, int b) { return a < b ? a : b; }
__host__ __device__ inline int cmax(int a, int b) { return a > b ? a : b; }

struct PoolDims {
  int H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, OH, OW;
  bool count_include_pad;
  i64 planes;  // N*C
  FastDiv by_OHW, by_OW;
};

inline PoolDims pool_dims(const char* op, const Pool2dParams& p) {
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
  d.by_OHW = FastDiv(d.OH * d.OW);
  d.by_OW = FastDiv(d.OW);
  return d;
}

__host__ __device__ inline int first_in(int start, int dil) { return start >= 0 ? 0 : (-start + dil - 1) / dil; }

// Window max with the CPU kernel's rules: NaN sticks, ties keep the first.
__host__ __device__ inline void window_max(const PoolDims& d, const float* xp, int oh, int ow, float& best,
                                  int& arg) {
  best = -std::numeric_limits<float>::infinity();
  arg = -1;
  const int hs = oh * d.sh - d.pt, ws = ow * d.sw - d.pl;
  for (int i = first_in(hs, d.dh); i < d.kh; ++i) {
    const int ih = hs + i * d.dh;
    if (ih >= d.H) break;
    for (int j = first_in(ws, d.dw); j < d.kw; ++j) {
      const int iw = ws + j * d.dw;
      if (iw >= d.W) break;
      const float v = CC_LDG(xp + ih * d.W + iw);
      if ((v > best || v != v || arg < 0) && !(best != best)) {
        best = v;
        arg = ih * d.W + iw;
      }
    }
  }
}

// Divisor of one average window, as in the CPU kernel (PyTorch's rule).
__host__ __device__ inline int avg_divisor(const PoolDims& d, int hs, int ws) {
  if (d.count_include_pad) {
    const int he = cmin(hs + d.kh, d.H + d.pb), we = cmin(ws + d.kw, d.W + d.pr);
    return (he - hs) * (we - ws);
  }
  const int h0 = cmax(hs, 0), w0 = cmax(ws, 0);
  const int h1 = cmin(hs + d.kh, d.H), w1 = cmin(ws + d.kw, d.W);
  return cmax(0, h1 - h0) * cmax(0, w1 - w0);
}


// Per-output-element bodies of the kernels (the kernels loop over i). The
// flat index is 32-bit: the host launches chunks of planes small enough for
// that, with the pointers offset to the chunk's first plane.
__host__ __device__ inline void split_out(const PoolDims& d, int i, int& nc, int& oh, int& ow) {
  int o;
  nc = d.by_OHW.divmod(i, o);
  oh = d.by_OW.divmod(o, ow);
}

__host__ __device__ inline void max_fwd_at(const PoolDims& d, const float* x, float* y, i64* ind,
                                           int i) {
  int nc, oh, ow;
  split_out(d, i, nc, oh, ow);
  float best;
  int arg;
  window_max(d, x + i64(nc) * d.H * d.W, oh, ow, best, arg);
  y[i] = best;
  if (ind) ind[i] = arg;
}

// Adds grad_y[i] to the input element that won output i's window.
__host__ __device__ inline void max_bwd_at(const PoolDims& d, const float* gy, const float* x,
                                           float* gx, int i) {
  const i64 hw = i64(d.H) * d.W;
  int nc, oh, ow;
  split_out(d, i, nc, oh, ow);
  float best;
  int arg;
  window_max(d, x + i64(nc) * hw, oh, ow, best, arg);
  if (arg >= 0) add_to(gx + i64(nc) * hw + arg, gy[i]);
}

__host__ __device__ inline void avg_fwd_at(const PoolDims& d, const float* x, float* y, int i) {
  int nc, oh, ow;
  split_out(d, i, nc, oh, ow);
  const float* xp = x + i64(nc) * d.H * d.W;
  const int hs = oh * d.sh - d.pt, ws = ow * d.sw - d.pl;
  const int h0 = cmax(hs, 0), h1 = cmin(hs + d.kh, d.H);
  const int w0 = cmax(ws, 0), w1 = cmin(ws + d.kw, d.W);
  float s = 0.f;
  for (int ih = h0; ih < h1; ++ih)
    for (int iw = w0; iw < w1; ++iw) s += CC_LDG(xp + ih * d.W + iw);
  const int div = avg_divisor(d, hs, ws);
  y[i] = div > 0 ? s / float(div) : 0.f;
}

// Spreads grad_y[i] / divisor over output i's window.
__host__ __device__ inline void avg_bwd_at(const PoolDims& d, const float* gy, float* gx, int i) {
  const i64 hw = i64(d.H) * d.W;
  int nc, oh, ow;
  split_out(d, i, nc, oh, ow);
  const int hs = oh * d.sh - d.pt, ws = ow * d.sw - d.pl;
  const int div = avg_divisor(d, hs, ws);
  if (div <= 0) return;
  const float g = gy[i] / float(div);
  const int h0 = cmax(hs, 0), h1 = cmin(hs + d.kh, d.H);
  const int w0 = cmax(ws, 0), w1 = cmin(ws + d.kw, d.W);
  float* gp = gx + i64(nc) * hw;
  for (int ih = h0; ih < h1; ++ih)
    for (int iw = w0; iw < w1; ++iw) add_to(gp + ih * d.W + iw, g);
}

// Global max as (value, index) pairs: `take(m, a, v, j)` folds element j in
// (the first NaN, else the first max wins, as on the CPU) and `merge` joins
// two partial results (used by the warp reduction).
__host__ __device__ inline void argmax_take(float& m, i64& a, float v, i64 j) {
  if (a < 0 || ((v > m || v != v) && m == m)) { m = v; a = j; }
}
__host__ __device__ inline void argmax_merge(float& m, i64& a, float m2, i64 a2) {
  if (a2 < 0) return;
  const bool nan1 = m != m, nan2 = m2 != m2;
  if (a < 0 || (nan2 && !nan1) || (!nan1 && !nan2 && m2 > m) ||
      (((!nan1 && !nan2 && m2 == m) || (nan1 && nan2)) && a2 < a)) {
    m = m2; a = a2;
  }
}

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
