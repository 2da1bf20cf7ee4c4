// The three convolution GEMMs as igemm Loaders/Stores (internal).
// Shapes are copied into 32-bit fields (host checks they fit); tensor
// offsets are computed in 64 bits.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

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

// A rows of the forward convs: the weights [K][Cg*kh*kw], contiguous in k.
struct FwdRows {
  const float* w;
  int Kg, Kd;
  int vec_a;  // widest vector load the rows allow (1, 2, 4): Kd and alignment
  struct Row { const float* wr; };
  __host__ __device__ Row row(int g, int m) const { return {w + i64(g * Kg + m) * Kd}; }
  __host__ __device__ float a(const Row& r, int k) const { return CC_LDG(r.wr + k); }
  __host__ __device__ const float* a_addr(const Row& r, int k) const { return r.wr + k; }
  template <int V>
  __host__ __device__ void a_vec(const Row& r, int k, float* out) const {
    if constexpr (V == 4) {
      const float4 v = CC_LDG(reinterpret_cast<const float4*>(r.wr + k));
      out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
    } else {
      const float2 v = CC_LDG(reinterpret_cast<const float2*>(r.wr + k));
      out[0] = v.x; out[1] = v.y;
    }
  }
};

// The vector width weight rows allow: Kd a multiple of it, rows aligned.
inline int row_vector_width(const float* w, int Kd) {
  const auto addr = reinterpret_cast<std::uintptr_t>(w);
  if (Kd % 4 == 0 && addr % 16 == 0) return 4;
  if (Kd % 2 == 0 && addr % 8 == 0) return 2;
  return 1;
}

inline FwdRows fwd_rows(const ConvDims& d, const float* w) {
  const int Kd = d.Cg * d.khw;
  return {w, d.Kg, Kd, row_vector_width(w, Kd)};
}

// Forward, per group g:  Y[m = out channel][n = (img, oh, ow)]
//   = sum_{k = (c, r, s)} W[g*Kg + m][c][r][s] * X[img][g*Cg + c][oh*sh - pt + r*dh][ow*sw - pl + s*dw]
struct FwdLoader : FwdRows {
  static constexpr bool kVecA = true, kTable = false;
  ConvDims d;
  const float* x;
  FwdLoader(const ConvDims& dims, const float* x_, const float* w_)
      : FwdRows(fwd_rows(dims, w_)), d(dims), x(x_) {}
  struct Col { const float* xb; int ih0, iw0; };
  __host__ __device__ Col col(int g, int n, const int2* = nullptr) const {
    int pix, ow;
    const int img = d.by_OHW.divmod(n, pix);
    const int oh = d.by_OW.divmod(pix, ow);
    return {x + (i64(img) * d.C + i64(g) * d.Cg) * d.HW, oh * d.sh - d.pt, ow * d.sw - d.pl};
  }
  __host__ __device__ bool b_addr(const Col& c, int k, const float*& p) const {
    int rs, s;
    const int ci = d.by_khw.divmod(k, rs);
    const int r = d.by_kw.divmod(rs, s);
    const int ih = c.ih0 + r * d.dh, iw = c.iw0 + s * d.dw;
    if (unsigned(ih) >= unsigned(d.H) || unsigned(iw) >= unsigned(d.W)) return false;
    p = c.xb + i64(ci) * d.HW + ih * d.W + iw;
    return true;
  }
  __host__ __device__ float b(const Col& c, int k) const {
    const float* p;
    return b_addr(c, k, p) ? CC_LDG(p) : 0.f;
  }
};

// Forward for 1x1 kernels without padding (most of the FLOPs of ResNet and
// MobileNet): every B element is in bounds and B[k][n] sits k planes after
// the column's pixel, so a load is one multiply-add of the address instead
// of two divisions and a bounds test.
struct Fwd1x1Loader : FwdRows {
  static constexpr bool kVecA = true, kTable = false;
  ConvDims d;
  const float* x;
  Fwd1x1Loader(const ConvDims& dims, const float* x_, const float* w_)
      : FwdRows(fwd_rows(dims, w_)), d(dims), x(x_) {}
  struct Col { const float* xp; };
  __host__ __device__ Col col(int g, int n, const int2* = nullptr) const {
    int pix, ow;
    const int img = d.by_OHW.divmod(n, pix);
    const int oh = d.by_OW.divmod(pix, ow);
    return {x + (i64(img) * d.C + i64(g) * d.Cg) * d.HW + i64(oh) * d.sh * d.W + i64(ow) * d.sw};
  }
  __host__ __device__ bool b_addr(const Col& c, int k, const float*& p) const {
    p = c.xp + i64(k) * d.HW;
    return true;
  }
  __host__ __device__ float b(const Col& c, int k) const { return CC_LDG(c.xp + i64(k) * d.HW); }
};

// (bottom/right padding may add output rows/columns that read only zeros)
inline bool is_1x1_unpadded(const ConvDims& d) {
  return d.kh == 1 && d.kw == 1 && d.pt == 0 && d.pl == 0 && (d.OH - 1) * d.sh < d.H &&
         (d.OW - 1) * d.sw < d.W;
}

// Forward for any geometry with the k decomposition read from a per-block
// table instead of computed: entry k = (ci, r, s) holds the input offset
// ci*HW + r*dh*W + s*dw and the packed row/column shift (r*dh, s*dw), so a
// B load is a table read (the same entry for the whole warp), two adds, a
// bounds test and the load. Used when the table fits (kMaxTableEntries) and
// offsets fit 32 bits (fwd_table_fits).
constexpr int kMaxTableEntries = 4608;  // 36 KB: ResNet-50's deepest 3x3 (512 x 9)

struct FwdTableLoader : FwdRows {
  static constexpr bool kVecA = true, kTable = true;
  ConvDims d;
  const float* x;
  FwdTableLoader(const ConvDims& dims, const float* x_, const float* w_)
      : FwdRows(fwd_rows(dims, w_)), d(dims), x(x_) {}
  struct Col { const float* xb; int ih0, iw0, off0; const int2* table; };
  __host__ __device__ void fill_table(int2* table, int t, int nt, int Kd) const {
    for (int k = t; k < Kd; k += nt) {
      int rs, s;
      const int ci = d.by_khw.divmod(k, rs);
      const int r = d.by_kw.divmod(rs, s);
      table[k] = make_int2(ci * d.HW + r * d.dh * d.W + s * d.dw, ((r * d.dh) << 16) | (s * d.dw));
    }
  }
  __host__ __device__ Col col(int g, int n, const int2* table) const {
    int pix, ow;
    const int img = d.by_OHW.divmod(n, pix);
    const int oh = d.by_OW.divmod(pix, ow);
    const int ih0 = oh * d.sh - d.pt, iw0 = ow * d.sw - d.pl;
    return {x + (i64(img) * d.C + i64(g) * d.Cg) * d.HW, ih0, iw0, ih0 * d.W + iw0, table};
  }
  __host__ __device__ bool b_addr(const Col& c, int k, const float*& p) const {
    const int2 e = c.table[k];
    const int ih = c.ih0 + (e.y >> 16), iw = c.iw0 + (e.y & 0xffff);
    if (unsigned(ih) >= unsigned(d.H) || unsigned(iw) >= unsigned(d.W)) return false;
    p = c.xb + (e.x + c.off0);
    return true;
  }
  __host__ __device__ float b(const Col& c, int k) const {
    const float* p;
    return b_addr(c, k, p) ? CC_LDG(p) : 0.f;
  }
};

inline bool fwd_table_fits(const ConvDims& d) {
  return d.Cg * d.khw <= kMaxTableEntries && i64(d.Cg + 1) * d.HW < (i64(1) << 31) &&
         i64(d.kh - 1) * d.dh < 32768 && i64(d.kw - 1) * d.dw < 65536;
}

// y = clamp(v + bias[k] + residual); NaN passes through the clamp, as on the CPU.
struct FwdStore {
  ConvDims d;
  float* y;
  const float* bias;
  const float* residual;
  float lo, hi;
  __host__ __device__ FwdStore at_split(int) const { return *this; }
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

// Split-K forward (few output tiles, long reduction): split s writes its
// partial sums to slice s of a workspace (y's layout per slice), then
// fwd_epilogue_at sums the slices in order and finishes each element.
struct FwdPartialStore {
  ConvDims d;
  float* ws;
  i64 slice;  // elements per split (= y's size)
  __host__ __device__ FwdPartialStore at_split(int s) const {
    return {d, ws + i64(s) * slice, slice};
  }
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    int pix;
    const int img = d.by_OHW.divmod(n, pix), k = g * d.Kg + m;
    ws[(i64(img) * d.K + k) * d.OHW + pix] = v;
  }
};

__host__ __device__ inline void fwd_epilogue_at(const ConvDims& d, float* y, const float* ws,
                                                int splits, i64 slice, const float* bias,
                                                const float* residual, float lo, float hi,
                                                i64 i) {
  float v = ws[i];
  for (int s = 1; s < splits; ++s) v += ws[i + s * slice];
  if (bias) v += CC_LDG(bias + (i / d.OHW) % d.K);
  if (residual) v += CC_LDG(residual + i);
  v = v < lo ? lo : v;
  y[i] = v > hi ? hi : v;
}

// Backward data, per group g:  dX[m = in channel c][n = (img, ih, iw)]
//   = sum_{k = (o, r, s)} W[g*Kg + o][c][r][s] * dY[img][g*Kg + o][oh][ow]
// where oh*sh = ih + pt - r*dh (only exact multiples inside the output count).
struct BwdDataLoader {
  static constexpr bool kVecA = false, kTable = false;
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
  __host__ __device__ Col col(int g, int n, const int2* = nullptr) const {
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
  __host__ __device__ BwdDataStore at_split(int) const { return *this; }
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    int pix;
    const int img = d.by_HW.divmod(n, pix);
    gx[(i64(img) * d.C + i64(g) * d.Cg + m) * d.HW + pix] = v;
  }
};

// Backward weight, per group g:  dW[m = out channel o][n = (c, r, s)]
//   = sum_{k = (img, oh, ow)} dY[img][g*Kg + o][oh][ow] * X[img][g*Cg + c][ih][iw]
// Kd = N*OH*OW is long and M, N are small, so this one runs split-K: split s
// writes slice s of a workspace, summed in order afterwards (deterministic).
struct BwdWeightLoader {
  static constexpr bool kVecA = false, kTable = false;
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
  __host__ __device__ Col col(int g, int n, const int2* = nullptr) const {
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
  float* ws;
  i64 slice;  // elements per split (= dW's size)
  __host__ __device__ BwdWeightStore at_split(int s) const {
    return {d, ws + i64(s) * slice, slice};
  }
  __host__ __device__ void operator()(int g, int m, int n, float v) const {
    ws[(i64(g) * d.Kg + m) * (d.Cg * d.khw) + n] = v;
  }
};

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
