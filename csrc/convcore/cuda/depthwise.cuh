// Direct kernels for convolutions with one input channel per group
// (depthwise, channel multiplier Kg >= 1), where a GEMM tile would be almost
// all padding (internal; defined in conv2d_depthwise.cu).
#pragma once
#include "convcore/cuda/conv2d_loaders.cuh"
#include "convcore/epilogue.h"

namespace convcore {
namespace cuda {
namespace detail {

// Per-element bodies (run by the kernels, and by the host emulation test).
// Flat indices are 32-bit: the host launches batch chunks small enough that
// every index of a launch fits (see for_batch_chunks in conv2d_depthwise.cu),
// so the index math is FastDiv multiplies, not 64-bit divisions.

// Output element i of a conv with one input channel per group.
__host__ __device__ inline float dw_forward_at(const ConvDims& d, const float* x, const float* w,
                                               const float* bias, const float* residual, float lo,
                                               float hi, int i) {
  int pix, k, ow;
  const int plane = d.by_OHW.divmod(i, pix);
  const int img = d.by_K.divmod(plane, k);
  const int oh = d.by_OW.divmod(pix, ow);
  const float* xp = x + (i64(img) * d.C + k / d.Kg) * d.HW;
  const float* wp = w + i64(k) * d.khw;
  const int ih0 = oh * d.sh - d.pt, iw0 = ow * d.sw - d.pl;
  float acc = 0.f;
  for (int r = 0; r < d.kh; ++r) {
    const int ih = ih0 + r * d.dh;
    if (unsigned(ih) >= unsigned(d.H)) continue;
    for (int s = 0; s < d.kw; ++s) {
      const int iw = iw0 + s * d.dw;
      if (unsigned(iw) < unsigned(d.W))
        acc = fmaf(CC_LDG(wp + r * d.kw + s), CC_LDG(xp + ih * d.W + iw), acc);
    }
  }
  if (bias) acc += CC_LDG(bias + k);
  if (residual) acc += CC_LDG(residual + i);
  acc = acc < lo ? lo : acc;
  return acc > hi ? hi : acc;
}

// Input-gradient element i: gathers from every output window that used it.
__host__ __device__ inline float dw_backward_input_at(const ConvDims& d, const float* gy,
                                                      const float* w, int i) {
  int pix, c, iw;
  const int plane = d.by_HW.divmod(i, pix);
  const int img = d.by_C.divmod(plane, c);
  const int ih = d.by_W.divmod(pix, iw);
  float acc = 0.f;
  for (int o = 0; o < d.Kg; ++o) {
    const int k = c * d.Kg + o;
    const float* gp = gy + (i64(img) * d.K + k) * d.OHW;
    const float* wp = w + i64(k) * d.khw;
    for (int r = 0; r < d.kh; ++r) {
      const int th = ih + d.pt - r * d.dh;
      if (th < 0) break;  // th only decreases with r
      const int oh = d.by_sh.div(th);
      if (oh * d.sh != th || oh >= d.OH) continue;
      for (int s = 0; s < d.kw; ++s) {
        const int tw = iw + d.pl - s * d.dw;
        if (tw < 0) break;
        const int ow = d.by_sw.div(tw);
        if (ow * d.sw != tw || ow >= d.OW) continue;
        acc = fmaf(CC_LDG(wp + r * d.kw + s), CC_LDG(gp + oh * d.OW + ow), acc);
      }
    }
  }
  return acc;
}

// Term q = (img, oh, ow) of the weight gradient of element (k, r*kw + s);
// q < N*OH*OW, which the host checks fits 32 bits.
__host__ __device__ inline float dw_weight_term(const ConvDims& d, const float* gy, const float* x,
                                                int k, int rs, int q) {
  int s, pix, ow;
  const int r = d.by_kw.divmod(rs, s), c = k / d.Kg;
  const int img = d.by_OHW.divmod(q, pix);
  const int oh = d.by_OW.divmod(pix, ow);
  const int ih = oh * d.sh - d.pt + r * d.dh, iw = ow * d.sw - d.pl + s * d.dw;
  if (unsigned(ih) >= unsigned(d.H) || unsigned(iw) >= unsigned(d.W)) return 0.f;
  return CC_LDG(gy + (i64(img) * d.K + k) * d.OHW + pix) *
         CC_LDG(x + (i64(img) * d.C + c) * d.HW + ih * d.W + iw);
}

void depthwise_forward(const ConvDims& d, const float* x, const float* w, float* y,
                       const Epilogue& ep, const float* residual);
void depthwise_backward_input(const ConvDims& d, const float* gy, const float* w, float* gx);
void depthwise_backward_weight(const ConvDims& d, const float* gy, const float* x, float* gw);
// grad_b[k] = sum of grad_y over (img, oh, ow); any conv.
void bias_backward(const ConvDims& d, const float* gy, float* gb);

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
