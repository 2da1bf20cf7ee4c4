// Partial vectors under lane masks (AVX2, AVX-512) and the strided row copy
// that the convolution packings share: every row of a phase plane
// (shifted GEMM) or of a pixel panel (implicit GEMM, 7-pixel tiles) is one
// output row's worth of an input row read at the conv's stride.
#pragma once
#include <algorithm>

#include "convcore/cpu/kernels/vec.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

#if defined(CONVCORE_ISA_avx512)
typedef __mmask16 Mask;
inline Mask lane_mask(int lo, int hi) {  // lanes [lo, hi) of one vector
  return Mask(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
inline V mload(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
inline void mstore(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
#elif defined(CONVCORE_ISA_avx2)
typedef __m256i Mask;
inline Mask lane_mask(int lo, int hi) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), idx),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx));
}
inline V mload(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
inline void mstore(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
#endif

// d[t] = src[t * sw] for t in [0, n), reading nothing at or past
// src[avail] (avail > (n - 1) * sw). Strides 1 and 2 go a vector at a time
// to the row's end, the last vector's loads under lane masks (masked-off
// lanes never fault): the rows are 7-112 floats, and a scalar tail per row
// was a large part of the packing (ResNet-50's 128x56x56 stride-2 layer:
// 13% of its time in the shifted GEMM's fill). Writes d[t] for t < dcap
// (>= n) only: where dcap leaves a whole vector past n, the last one is
// stored whole (a masked store costs several plain ones on Zen 4).
inline void gather_row(const float* src, index_t avail, index_t n, index_t sw, float* d,
                       index_t dcap) {
  index_t t = 0;
#if defined(CONVCORE_ISA_avx512) || defined(CONVCORE_ISA_avx2)
  if (sw == 1) {
    for (; t + kVW <= n; t += kVW) vstore(d + t, vload(src + t));
    if (t < n) {
      const Mask m = lane_mask(0, int(n - t));
      if (t + kVW <= dcap)
        vstore(d + t, mload(src + t, m));
      else
        mstore(d + t, m, mload(src + t, m));
    }
    return;
  }
  if (sw == 2) {
    for (; t + kVW <= n && 2 * (t + kVW) <= avail; t += kVW)
      vstore(d + t, vload_even(src + 2 * t));
    for (; t < n; t += kVW) {
      // only the 2k - 1 floats the k outputs need
      const int k = int(std::min<index_t>(kVW, n - t)), nin = 2 * k - 1;
      const V a = mload(src + 2 * t, lane_mask(0, std::min<int>(nin, kVW)));
      const V b = nin > kVW ? mload(src + 2 * t + kVW, lane_mask(0, nin - kVW)) : vzero();
      if (t + kVW <= dcap)
        vstore(d + t, veven(a, b));
      else
        mstore(d + t, lane_mask(0, k), veven(a, b));
    }
    return;
  }
#else
  if (sw == 1) {
    std::copy(src, src + n, d);
    return;
  }
  if (sw == 2)
    for (; t + kVW <= n && 2 * (t + kVW) <= avail; t += kVW)
      vstore(d + t, vload_even(src + 2 * t));
#endif
  for (; t < n; ++t) d[t] = src[t * sw];
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
