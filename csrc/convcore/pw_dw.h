// A 1x1 convolution (stride 1, no padding, groups 1) feeding a depthwise
// convolution, weights packed once, run as one operator: the ONNX runner
// fuses the expand + depthwise pair of MobileNet-style blocks into this.
// Where the CPU has the fused kernel (KernelTable::pw_dw) the expansion is
// computed band by band in cache and never stored; elsewhere, and for
// geometries that kernel lacks, the two convolutions run one after the
// other through PackedConv2d (same results within float rounding).
#pragma once
#include <memory>
#include <mutex>

#include "convcore/conv2d_packed.h"
#include "convcore/epilogue.h"

namespace convcore {

class PackedPwDw {
 public:
  // we: [E][cin] 1x1 weights, be: [E] or null, clamped to [e_lo, e_hi];
  // dw_geom: the depthwise conv (C = K = groups = E; kernel, strides,
  // padding, dilation; N, H, W ignored), wd: its [E][1][kh][kw] taps.
  PackedPwDw(index_t E, index_t cin, const float* we, const float* be, float e_lo, float e_hi,
             const Conv2dParams& dw_geom, const float* wd);

  // y = clamp(dw(clamp(1x1(x) + be)) + ep.bias + residual, ep.lo, ep.hi)
  // for x of shape [N][cin][H][W]; `dw` is the depthwise geometry for it
  // (C = E, finalized).
  void run(const Conv2dParams& dw, const float* x, float* y, const Epilogue& ep,
           const float* residual) const;

  // Whether run() takes the fused kernel for this depthwise geometry.
  bool fused_for(const Conv2dParams& dw) const;
  index_t in_channels() const { return cin_; }

 private:
  index_t E_, cin_, blk_;
  float e_lo_, e_hi_;
  AlignedFloats we_;  // [E / blk][cin][blk], zero-padded lanes
  AlignedFloats be_;  // [E padded to blk]
  PackedConv2d dw_;   // also the fallback's depthwise
  // The fallback's 1x1, packed on first use (machines without pw_dw).
  mutable std::once_flag pw_once_;
  mutable std::unique_ptr<PackedConv2d> pw_;
  void run_unfused(const Conv2dParams& dw, const float* x, float* y, const Epilogue& ep,
                   const float* residual) const;
};

}  // namespace convcore
