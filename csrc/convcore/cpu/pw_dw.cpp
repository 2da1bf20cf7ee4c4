// PackedPwDw: the fused 1x1 + depthwise operator (pw_dw.h). Jobs are
// (image, block of simd_width channels, band of output rows); a band
// recomputes the few expansion rows it shares with its neighbours (the
// depthwise halo), which is cheaper than storing the expansion.
#include "convcore/pw_dw.h"

#include <algorithm>

#include "convcore/cpu/job_pool.h"
#include "convcore/dispatch.h"
#include "convcore/threading.h"

namespace convcore {

namespace {

Conv2dParams pointwise_geometry(index_t E, index_t cin) {
  Conv2dParams g;
  g.N = 1;
  g.C = cin;
  g.H = g.W = 1;
  g.K = E;
  g.finalize("conv2d");
  return g;
}

}  // namespace

PackedPwDw::PackedPwDw(index_t E, index_t cin, const float* we, const float* be, float e_lo,
                       float e_hi, const Conv2dParams& dw_geom, const float* wd)
    : E_(E), cin_(cin), blk_(kernels().simd_width), e_lo_(e_lo), e_hi_(e_hi),
      dw_(dw_geom, wd, ConvAlgo::Depthwise) {
  if (dw_geom.C != E || dw_geom.K != E || dw_geom.groups != E)
    fail("conv2d", "fused 1x1 + depthwise: the depthwise conv must have ", E,
         " channels and groups, got C=", dw_geom.C, " K=", dw_geom.K, " groups=", dw_geom.groups);
  const index_t nblk = (E + blk_ - 1) / blk_;
  we_.resize(nblk * cin * blk_);
  be_.resize(nblk * blk_);
  std::fill(we_.data(), we_.data() + we_.size, 0.f);
  std::fill(be_.data(), be_.data() + be_.size, 0.f);
  for (index_t e = 0; e < E; ++e) {
    float* dst = we_.data() + (e / blk_) * cin * blk_ + e % blk_;
    for (index_t c = 0; c < cin; ++c) dst[c * blk_] = we[e * cin + c];
    if (be) be_.data()[e] = be[e];
  }
}

bool PackedPwDw::fused_for(const Conv2dParams& dw) const {
  const KernelTable& kt = kernels();
  return kt.pw_dw != nullptr && kt.simd_width == blk_ && dw.kh == dw.kw &&
         (dw.kh == 3 || dw.kh == 5) && dw.stride_h == dw.stride_w &&
         (dw.stride_h == 1 || dw.stride_h == 2);
}

void PackedPwDw::run(const Conv2dParams& dw, const float* x, float* y, const Epilogue& ep,
                     const float* residual) const {
  const Conv2dParams& g = dw_.geometry();
  if (dw.C != E_ || dw.K != E_ || dw.groups != E_ || dw.kh != g.kh || dw.kw != g.kw)
    fail("conv2d", "input does not match the packed 1x1 + depthwise convolution");
  if (dw.N == 0) return;
  if (!fused_for(dw)) return run_unfused(dw, x, y, ep, residual);
  PwDwArgs a;
  a.dw = dw;
  a.cin = cin_;
  a.x = x;
  a.we = we_.data();
  a.be = be_.data();
  a.e_lo = e_lo_;
  a.e_hi = e_hi_;
  a.e_clamp = Epilogue::clip(e_lo_, e_hi_).clamp();
  a.wd = dw_.weights();
  a.bd = ep.bias;
  a.y = y;
  a.residual = residual;
  a.clamp = ep.clamp();
  a.lo = ep.lo;
  a.hi = ep.hi;
  // Jobs of two channel blocks (x read once for both) and bands of ~256 KB
  // of channels-last expansion per block (L2-resident next to their
  // output), then more bands if that leaves fewer than ~2 jobs per thread,
  // as long as a band keeps at least twice the halo's rows. (Ten MobileNet
  // and EfficientNet shapes on 2 threads, interleaved A/B: 96 KB and 4 jobs
  // per thread 1.57 ms in all, 256 KB and 2 jobs 1.44 ms: fewer halo rows
  // recomputed, fewer jobs.)
  const index_t S = dw.stride_h, halo = (dw.kh - 1) * dw.dil_h;
  const index_t Wp = dw.W + dw.pad_l + dw.pad_r;
  const index_t row_bytes = Wp * blk_ * index_t(sizeof(float));
  index_t rb = std::clamp<index_t>(((index_t(256) << 10) / row_bytes - halo) / S, 1, dw.OH);
  const index_t nblk = (E_ + blk_ - 1) / blk_, npair = (nblk + 1) / 2;
  const index_t T = get_num_threads();
  index_t nb = (dw.OH + rb - 1) / rb;
  if (dw.N * npair * nb < 2 * T) {
    const index_t min_rb = std::min<index_t>(dw.OH, std::max<index_t>(2 * halo, 1));
    const index_t want = (2 * T + dw.N * npair - 1) / (dw.N * npair);
    nb = std::max(nb, std::min(want, dw.OH / min_rb));
    rb = (dw.OH + nb - 1) / nb;
    nb = (dw.OH + rb - 1) / rb;
  }
  const KernelTable& kt = kernels();
  const index_t per_img = npair * nb;
  // Channel pair outer: run_jobs deals contiguous ranges, so each core
  // keeps its share of the weights (bands outer measured level in
  // MobileNetV2 and EfficientNet-Lite).
  run_jobs(dw.N * per_img, [&](index_t job) {
    const index_t n = job / per_img, b = job % per_img / nb * 2, r = job % nb;
    const index_t oh0 = r * rb, oh1 = std::min(dw.OH, oh0 + rb);
    kt.pw_dw(a, n, b * blk_, std::min<index_t>(2, nblk - b), oh0, oh1);
  });
}

void PackedPwDw::run_unfused(const Conv2dParams& dw, const float* x, float* y, const Epilogue& ep,
                             const float* residual) const {
  std::call_once(pw_once_, [&] {
    std::vector<float> w(size_t(E_ * cin_));
    for (index_t e = 0; e < E_; ++e)
      for (index_t c = 0; c < cin_; ++c)
        w[size_t(e * cin_ + c)] = we_.data()[(e / blk_) * cin_ * blk_ + c * blk_ + e % blk_];
    pw_ = std::make_unique<PackedConv2d>(pointwise_geometry(E_, cin_), w.data());
  });
  Conv2dParams pp = pointwise_geometry(E_, cin_);
  pp.N = dw.N;
  pp.H = dw.H;
  pp.W = dw.W;
  pp.finalize("conv2d");
  AlignedFloats e;
  e.resize(pp.y_size());
  Epilogue ee = Epilogue::clip(e_lo_, e_hi_);
  ee.bias = be_.data();
  pw_->run(pp, x, e.data(), ee, nullptr);
  dw_.run(dw, e.data(), y, ep, residual);
}

}  // namespace convcore
