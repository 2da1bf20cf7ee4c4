// The three convolution GEMMs as igemm Loaders/Stores (internal).
// Shapes are copied into 32-bit fields (host checks they fit); tensor
// offsets are computed in 64 bits.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "convcore/cuda/hostdev.cuh"
#include "convcore/params.h"

namespace convcore {
namespace cuda {
namespace detail {

struct ConvDims {
  int N, C, H, W, K, Cg, Kg, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW;
  int khw, HW, OHW;
  // The divisions of the hot loops, precomputed (see FastDiv).
  FastDiv by_khw, by_kw, by_HW, by_W, by_OHW, by_OW, by_sh, by_sw, by_K, by_C;
};

inline ConvDims conv_dims(const Conv2dParams& p) {
  ConvDims d;
  d.N = int(p.N); d.C = int(p.C); d.H = int(p.H); d.W = int(p.W); d.K = int(p.K);
  d.Cg = int(p.Cg()); d.Kg = int(p.Kg()); d.kh = int(p.kh); d.kw = int(p.kw);
  d.sh = int(p.stride_h); d.sw = int(p.stride_w); d.pt = int(p.pad_t); d.pl = int(p.pad_l);
  d.dh = int(p.dil_h); d.dw = int(p.dil_w); d.OH = int(p.OH); d.OW = int(p.OW);
  d.khw = d.kh * d.kw; d.HW = d.H * d.W; d.OHW = d.OH * d.OW;
  d.by_khw = FastDiv(d.khw); d.by_kw = FastDiv(d.kw); d.by_HW = FastDiv(d.HW);
  d.by_W = FastDiv(d.W); d.by_OHW = FastDiv(d.OHW); d.by_OW = FastDiv(d.OW);
  d.by_sh = FastDiv(d.sh); d.by_sw = FastDiv(d.sw);
  d.by_K = FastDiv(d.K); d.by_C = FastDiv(d.C);
  return d;
}

// Forward, per group g:  Y[m = out channel][n = (img, oh, ow)]
//   = sum_{k = (c, r, s)} W[g*Kg + m][c][r][s] * X[img][g*Cg + c][oh*sh - pt + r*dh][ow*sw - pl + s*dw]
struct FwdLoader {
  ConvDims d;
  const float* x;
  const float* w;
  struct Row { const float* wr; };
  struct Col { const float* xb; int ih0, iw0; };
  __host__ __device__ Row row(int g, int m) const { return {w + i64(g * d.Kg + m) * (d.Cg * d.khw)}; }
  __host__ __device__ float a(const Row& r, int k) const { return CC_LDG(r.wr + k); }
  __host__ __device__ Col col(int g, int n) const {
    int pix, ow;
    const int img = d.by_OHW.divmod(n, pix);
    const int oh = d.by_OW.divmod(pix, ow);
    return {x + (i64(img) * d.C + i64(g) * d.Cg) * d.HW, oh * d.sh - d.pt, ow * d.sw - d.pl};
  }
  __host__ __device__ float b(const Col& c, int k) const {
    int rs, s;
    const int ci = d.by_khw.divmod(k, rs);
    const int r = d.by_kw.divmod(rs, s);
    const int ih = c.ih0 + r * d.dh, iw = c.iw0 + s * d.dw;
    if (unsigned(ih) >= unsigned(d.H) || unsigned(iw) >= unsigned(d.W)) return 0.f;
    return CC_LDG(c.xb + i64(ci) * d.HW + ih * d.W + iw);
  }
};

// y = clamp(v + bias[k] + residual); NaN passes through the clamp, as on the CPU.
struct FwdStore {
  ConvDims d;
  float* y;
  const float* bias;
  const float* residual;
  float lo, hi;
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    int pix;
    const int img = d.by_OHW.divmod(n, pix), k = g * d.Kg + m;
    const i64 off = (i64(img) * d.K + k) * d.OHW + pix;
    if (bias) v += CC_LDG(bias + k);
    if (residual) v += CC_LDG(residual + off);
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    y[off] = v;
  }
};

// Split-K forward (few output tiles, long reduction): blocks add partial
// sums straight into a zeroed y, then fwd_epilogue_at finishes each element.
struct FwdPartialStore {
  ConvDims d;
  float* y;
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    int pix;
    const int img = d.by_OHW.divmod(n, pix), k = g * d.Kg + m;
    add_to(y + (i64(img) * d.K + k) * d.OHW + pix, v);
  }
};

__host__ __device__ inline void fwd_epilogue_at(const ConvDims& d, float* y, const float* bias,
                                                const float* residual, float lo, float hi,
                                                i64 i) {
  float v = y[i];
  if (bias) v += CC_LDG(bias + (i / d.OHW) % d.K);
  if (residual) v += CC_LDG(residual + i);
  v = v < lo ? lo : v;
  y[i] = v > hi ? hi : v;
}

// Backward data, per group g:  dX[m = in channel c][n = (img, ih, iw)]
//   = sum_{k = (o, r, s)} W[g*Kg + o][c][r][s] * dY[img][g*Kg + o][oh][ow]
// where oh*sh = ih + pt - r*dh (only exact multiples inside the output count).
struct BwdDataLoader {
  ConvDims d;
  const float* gy;
  const float* w;
  struct Row { const float* wc; };
  struct Col { const float* gyb; int ihp, iwp; };
  __host__ __device__ Row row(int g, int m) const {
    return {w + (i64(g) * d.Kg * d.Cg + m) * d.khw};
  }
  __host__ __device__ float a(const Row& r, int k) const {
    int rs;
    const int o = d.by_khw.divmod(k, rs);
    return CC_LDG(r.wc + i64(o) * d.Cg * d.khw + rs);
  }
  __host__ __device__ Col col(int g, int n) const {
    int pix, iw;
    const int img = d.by_HW.divmod(n, pix);
    const int ih = d.by_W.divmod(pix, iw);
    return {gy + (i64(img) * d.K + i64(g) * d.Kg) * d.OHW, ih + d.pt, iw + d.pl};
  }
  __host__ __device__ float b(const Col& c, int k) const {
    int rs, s;
    const int o = d.by_khw.divmod(k, rs);
    const int r = d.by_kw.divmod(rs, s);
    const int th = c.ihp - r * d.dh, tw = c.iwp - s * d.dw;
    if (th < 0 || tw < 0) return 0.f;
    const int oh = d.by_sh.div(th), ow = d.by_sw.div(tw);
    if (oh * d.sh != th || ow * d.sw != tw || oh >= d.OH || ow >= d.OW) return 0.f;
    return CC_LDG(c.gyb + i64(o) * d.OHW + oh * d.OW + ow);
  }
};

struct BwdDataStore {
  ConvDims d;
  float* gx;
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    int pix;
    const int img = d.by_HW.divmod(n, pix);
    gx[(i64(img) * d.C + i64(g) * d.Cg + m) * d.HW + pix] = v;
  }
};

// Backward weight, per group g:  dW[m = out channel o][n = (c, r, s)]
//   = sum_{k = (img, oh, ow)} dY[img][g*Kg + o][oh][ow] * X[img][g*Cg + c][ih][iw]
// Kd = N*OH*OW is long and M, N are small, so this one runs split-K and
// the Store adds atomically into a zeroed dW.
struct BwdWeightLoader {
  ConvDims d;
  const float* gy;
  const float* x;
  struct Row { const float* gyo; };
  struct Col { const float* xc; int roff, soff; };
  __host__ __device__ Row row(int g, int m) const { return {gy + (i64(g) * d.Kg + m) * d.OHW}; }
  __host__ __device__ float a(const Row& r, int k) const {
    int pix;
    const int img = d.by_OHW.divmod(k, pix);
    return CC_LDG(r.gyo + i64(img) * d.K * d.OHW + pix);
  }
  __host__ __device__ Col col(int g, int n) const {
    int rs, s;
    const int c = d.by_khw.divmod(n, rs);
    const int r = d.by_kw.divmod(rs, s);
    return {x + (i64(g) * d.Cg + c) * d.HW, r * d.dh - d.pt, s * d.dw - d.pl};
  }
  __host__ __device__ float b(const Col& c, int k) const {
    int pix, ow;
    const int img = d.by_OHW.divmod(k, pix);
    const int oh = d.by_OW.divmod(pix, ow);
    const int ih = oh * d.sh + c.roff, iw = ow * d.sw + c.soff;
    if (unsigned(ih) >= unsigned(d.H) || unsigned(iw) >= unsigned(d.W)) return 0.f;
    return CC_LDG(c.xc + i64(img) * d.C * d.HW + ih * d.W + iw);
  }
};

struct BwdWeightStore {
  ConvDims d;
  float* gw;
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    add_to(gw + (i64(g) * d.Kg + m) * (d.Cg * d.khw) + n, v);
  }
};

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
