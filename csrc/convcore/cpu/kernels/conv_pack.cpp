// Packing of the implicit-GEMM B operand straight from the input image: no
// im2col buffer. Each row of the (virtual) im2col matrix is first gathered
// into a contiguous line (whole output-row segments: plain copies at stride
// 1, zero runs for the padding), then dealt into the NR-wide panels with
// full-vector copies.
#include <algorithm>
#include <vector>

#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

// line[0:nc) -> row k of the panels (zero-padded to whole panels; the line
// has room for the padding).
inline void deal(const float* line, index_t nc, index_t kc, index_t k, float* Bp) {
  const index_t np = (nc + kNR - 1) / kNR;
  const float* s = line;
  float* d = Bp + k * kNR;
  for (index_t jp = 0; jp < np; ++jp, s += kNR, d += kc * kNR)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) vstore(d + v * kVW, vload(s + v * kVW));
}

}  // namespace

void conv_pack_b(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                 index_t nc, float* Bp) {
  const index_t hw = p.H * p.W;
  const index_t ncp = (nc + kNR - 1) / kNR * kNR;
  const bool plain = p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                     p.pad_t == 0 && p.pad_l == 0 && p.OW == p.W && p.OH == p.H;
  if (plain) {  // column j reads x[c][j]: NR-float slices of each channel row
    const index_t full = nc / kNR * kNR;
    for (index_t jp = 0; jp < full; jp += kNR) {
      float* dst = Bp + jp * kc;
      const float* src = xg + p0 * hw + j0 + jp;
      for (index_t k = 0; k < kc; ++k, dst += kNR, src += hw)
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v) vstore(dst + v * kVW, vload(src + v * kVW));
    }
    if (full < nc) {
      const index_t nr = nc - full;
      float* dst = Bp + full * kc;
      const float* src = xg + p0 * hw + j0 + full;
      for (index_t k = 0; k < kc; ++k, dst += kNR, src += hw) {
        for (index_t t = 0; t < nr; ++t) dst[t] = src[t];
        for (index_t t = nr; t < kNR; ++t) dst[t] = 0.f;
      }
    }
    return;
  }
  thread_local std::vector<float> line_buf;
  if (index_t(line_buf.size()) < ncp) line_buf.resize(size_t(ncp));
  float* line = line_buf.data();
  std::fill(line + nc, line + ncp, 0.f);
  const index_t khw = p.kh * p.kw, sw = p.stride_w;
  for (index_t k = 0; k < kc; ++k) {
    const index_t r = p0 + k, c = r / khw, ki = (r % khw) / p.kw, kj = r % p.kw;
    const float* xc = xg + c * hw;
    const index_t off_w = kj * p.dil_w - p.pad_l;
    // ow whose tap iw = ow*sw + off_w lies inside [0, W)
    const index_t a = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
    const index_t b = p.W - off_w <= 0 ? 0 : (p.W - off_w - 1) / sw + 1;
    index_t jj = 0, oh = j0 / p.OW, ow = j0 % p.OW;
    while (jj < nc) {
      const index_t seg = std::min(p.OW - ow, nc - jj);
      const index_t ih = oh * p.stride_h - p.pad_t + ki * p.dil_h;
      float* d = line + jj - ow;  // d[ow] is this segment's column ow
      if (ih < 0 || ih >= p.H) {
        for (index_t t = ow; t < ow + seg; ++t) d[t] = 0.f;
      } else {
        const index_t lo = std::clamp(a, ow, ow + seg), hi = std::clamp(b, lo, ow + seg);
        for (index_t t = ow; t < lo; ++t) d[t] = 0.f;
        const float* xr = xc + ih * p.W + off_w;
        if (sw == 1) {
          for (index_t t = lo; t < hi; ++t) d[t] = xr[t];
        } else {
          for (index_t t = lo; t < hi; ++t) d[t] = xr[t * sw];
        }
        for (index_t t = hi; t < ow + seg; ++t) d[t] = 0.f;
      }
      jj += seg;
      ow = 0;
      ++oh;
    }
    deal(line, nc, kc, k, Bp);
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
