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

}  // namespace

// Taps are handled in chunks whose buffer offsets are computed once per
// call (the division by the stride stays out of the row loops).
constexpr index_t kTapChunk = 32;

// gy rows come zero-padded to d.gp (a multiple of kVW) and the buffer has
// kVW floats of slack, so every row is whole vectors: the zero lanes add
// nothing where they land.
void dw_bwd_input(const DwPlaneGeom& d, const float* gy, const float* w, float* buf) {
  const index_t taps = d.kh * d.kw, pitch = row_pitch(d), gp = d.gp;
  // Tap-major: stores of neighbouring taps overlap (shifted by dw floats),
  // so consecutive ones go to different rows, away from store forwarding.
  for (index_t tap = 0; tap < taps; ++tap) {
    const index_t off = tap_offset(d, tap / d.kw, tap % d.kw);
    const vf wv = splat(w[tap]);
    for (index_t oh = 0; oh < d.OH; ++oh) {
      const float* g = gy + oh * gp;
      float* row = buf + oh * pitch + off;
      for (index_t t = 0; t < gp; t += kVW) store(row + t, load(row + t) + wv * load(g + t));
    }
  }
}

void dw_bwd_weight(const DwPlaneGeom& d, const float* gy, const float* buf, float* acc) {
  const index_t taps = d.kh * d.kw, pitch = row_pitch(d), gp = d.gp;
  for (index_t t0 = 0; t0 < taps; t0 += kTapChunk) {
    const index_t nt = std::min<index_t>(kTapChunk, taps - t0);
    vf va[kTapChunk];
    index_t off[kTapChunk];
    for (index_t q = 0; q < nt; ++q) {
      va[q] = load(acc + (t0 + q) * kVW);
      off[q] = tap_offset(d, (t0 + q) / d.kw, (t0 + q) % d.kw);
    }
    for (index_t oh = 0; oh < d.OH; ++oh) {
      const float* g = gy + oh * gp;
      const float* base = buf + oh * pitch;
      for (index_t q = 0; q < nt; ++q) {
        const float* row = base + off[q];
        vf a = va[q];
        for (index_t t = 0; t < gp; t += kVW) a += load(g + t) * load(row + t);
        va[q] = a;
      }
    }
    for (index_t q = 0; q < nt; ++q) store(acc + (t0 + q) * kVW, va[q]);
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
