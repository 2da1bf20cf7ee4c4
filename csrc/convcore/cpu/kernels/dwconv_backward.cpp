// Direct depthwise conv backward on one plane (one copy per ISA). The input
// plane is held zero-padded and split by stride phase (DwPlaneGeom), so each
// kernel tap touches a contiguous run of OW floats: plain vector loops for
// every stride and dilation.
#include <algorithm>

#include "convcore/cpu/kernels/backward_table.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {
inline float* tap_row(const DwPlaneGeom& d, float* buf, index_t oh, index_t i, index_t j) {
  const index_t r = oh * d.sh + i * d.dh, c = j * d.dw;
  return buf + (r * d.sw + c % d.sw) * d.L + c / d.sw;
}
}  // namespace

void dw_bwd_input(const DwPlaneGeom& d, const float* gy, const float* w, float* buf) {
  const index_t OW = d.OW;
  for (index_t oh = 0; oh < d.OH; ++oh) {
    const float* g = gy + oh * OW;
    for (index_t i = 0; i < d.kh; ++i)
      for (index_t j = 0; j < d.kw; ++j) {
        float* row = tap_row(d, buf, oh, i, j);
        const float wv = w[i * d.kw + j];
        const vf wvec = splat(wv);
        index_t t = 0;
        for (; t + kVW <= OW; t += kVW) store(row + t, load(row + t) + wvec * load(g + t));
        for (; t < OW; ++t) row[t] += wv * g[t];
      }
  }
}

void dw_bwd_weight(const DwPlaneGeom& d, const float* gy, const float* buf, float* acc) {
  const index_t OW = d.OW, taps = d.kh * d.kw;
  constexpr index_t kMaxTaps = 64;  // taps per pass held in vector accumulators
  float* b = const_cast<float*>(buf);
  for (index_t t0 = 0; t0 < taps; t0 += kMaxTaps) {
    const index_t nt = std::min<index_t>(kMaxTaps, taps - t0);
    vf va[kMaxTaps];
    float sa[kMaxTaps];
    for (index_t q = 0; q < nt; ++q) { va[q] = vf{}; sa[q] = 0.f; }
    for (index_t oh = 0; oh < d.OH; ++oh) {
      const float* g = gy + oh * OW;
      for (index_t q = 0; q < nt; ++q) {
        const index_t tap = t0 + q;
        const float* row = tap_row(d, b, oh, tap / d.kw, tap % d.kw);
        vf a = va[q];
        index_t t = 0;
        for (; t + kVW <= OW; t += kVW) a += load(g + t) * load(row + t);
        va[q] = a;
        float s = sa[q];
        for (; t < OW; ++t) s += g[t] * row[t];
        sa[q] = s;
      }
    }
    for (index_t q = 0; q < nt; ++q) {
      float s = 0.f;
      for (int l = 0; l < kVW; ++l) s += va[q][l];
      acc[t0 + q] += s + sa[q];
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
