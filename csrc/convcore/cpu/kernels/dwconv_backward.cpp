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
// Offset of tap (i, j) from the start of output row oh's window, and the
// distance between consecutive output rows, in the phase-split buffer.
inline index_t tap_offset(const DwPlaneGeom& d, index_t i, index_t j) {
  const index_t c = j * d.dw;
  return (i * d.dh * d.sw + c % d.sw) * d.L + c / d.sw;
}
inline index_t row_pitch(const DwPlaneGeom& d) { return d.sh * d.sw * d.L; }

// The last OW % kVW values of a gy row, zero-padded to a full vector, so the
// row tail is one vector op too. The buffer carries kVW floats of slack at
// its end, and the zero lanes add nothing where they land.
inline vf tail_vector(const float* g, index_t from, index_t OW) {
  alignas(64) float t[kVW] = {};
  for (index_t k = from; k < OW; ++k) t[k - from] = g[k];
  return load(t);
}
}  // namespace

void dw_bwd_input(const DwPlaneGeom& d, const float* gy, const float* w, float* buf) {
  const index_t OW = d.OW, taps = d.kh * d.kw, pitch = row_pitch(d);
  const index_t full = OW / kVW * kVW;
  for (index_t oh = 0; oh < d.OH; ++oh) {
    const float* g = gy + oh * OW;
    const vf gt = tail_vector(g, full, OW);
    float* base = buf + oh * pitch;
    for (index_t tap = 0; tap < taps; ++tap) {
      float* row = base + tap_offset(d, tap / d.kw, tap % d.kw);
      const vf wv = splat(w[tap]);
      for (index_t t = 0; t < full; t += kVW) store(row + t, load(row + t) + wv * load(g + t));
      if (full < OW) store(row + full, load(row + full) + wv * gt);
    }
  }
}

void dw_bwd_weight(const DwPlaneGeom& d, const float* gy, const float* buf, float* acc) {
  const index_t OW = d.OW, taps = d.kh * d.kw, pitch = row_pitch(d);
  const index_t full = OW / kVW * kVW;
  constexpr index_t kMaxTaps = 32;  // taps per pass held in vector accumulators
  for (index_t t0 = 0; t0 < taps; t0 += kMaxTaps) {
    const index_t nt = std::min<index_t>(kMaxTaps, taps - t0);
    vf va[kMaxTaps];
    index_t off[kMaxTaps];
    for (index_t q = 0; q < nt; ++q) {
      va[q] = vf{};
      off[q] = tap_offset(d, (t0 + q) / d.kw, (t0 + q) % d.kw);
    }
    for (index_t oh = 0; oh < d.OH; ++oh) {
      const float* g = gy + oh * OW;
      const vf gt = tail_vector(g, full, OW);
      const float* base = buf + oh * pitch;
      for (index_t q = 0; q < nt; ++q) {
        const float* row = base + off[q];
        vf a = va[q];
        for (index_t t = 0; t < full; t += kVW) a += load(g + t) * load(row + t);
        if (full < OW) a += gt * load(row + full);
        va[q] = a;
      }
    }
    for (index_t q = 0; q < nt; ++q) {
      float s = 0.f;
      for (int l = 0; l < kVW; ++l) s += va[q][l];
      acc[t0 + q] += s;
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
