// The channel-interleaved ("NCHWc") depthwise band: kVW channels, one per
// vector lane, in a zero-padded channels-last buffer [rows][Wp][kVW], so
// every tap is one full-vector load whatever the stride and plane width.
// Shared by the depthwise kernel (which interleaves its input planes into
// the buffer) and the fused 1x1 + depthwise kernel (which computes the 1x1
// straight into it). Compiled once per ISA (included inside CONVCORE_ISA).
#pragma once
#include <algorithm>

#include "convcore/cpu/kernels/vec.h"
#include "convcore/params.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {
namespace dwc {

#if defined(CONVCORE_ISA_avx512)
// In-register 16x16 transpose: r[i] lane j <-> r[j] lane i.
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[4i + q] holds rows 4i..4i+3, column q of each 128-bit lane
  for (int h = 0; h < 2; ++h)
    for (int q = 0; q < 4; ++q) {
      t[8 * h + q] = _mm512_shuffle_f32x4(u[8 * h + q], u[8 * h + 4 + q], 0x88);
      t[8 * h + 4 + q] = _mm512_shuffle_f32x4(u[8 * h + q], u[8 * h + 4 + q], 0xDD);
    }
  for (int q = 0; q < 8; ++q) {
    r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
    r[8 + q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD);
  }
}
#endif

// Taps and bias of channels [k0, k0 + cnt) in vector lanes (others zero).
template <int KH, int KW>
struct Taps {
  V w[KH][KW];
  V bias;
  Taps(const float* wt, const float* b, index_t k0, index_t cnt) {
    alignas(64) float tmp[KH * KW][kVW];
    alignas(64) float bl[kVW];
    for (index_t c = 0; c < kVW; ++c) {
      bl[c] = c < cnt && b ? b[k0 + c] : 0.f;
      for (int t = 0; t < KH * KW; ++t) tmp[t][c] = c < cnt ? wt[(k0 + c) * KH * KW + t] : 0.f;
    }
    for (int i = 0; i < KH; ++i)
      for (int j = 0; j < KW; ++j) w[i][j] = vload(tmp[i * KW + j]);
    bias = vload(bl);
  }
};

// Output rows [oh0, oh1) of the band whose buffer B starts at padded input
// row oh0 * S (row pitch Wp pixels), channels-last into O ([row][OW][kVW]).
template <int KH, int KW, int S>
void band_outputs(const Conv2dParams& p, const float* B, index_t Wp, const Taps<KH, KW>& t,
                  index_t oh0, index_t oh1, float* O) {
  const index_t tap_i = p.dil_h * Wp * kVW, tap_j = p.dil_w * kVW, step = S * kVW;
  for (index_t oh = oh0; oh < oh1; ++oh) {
    const float* row = B + (oh - oh0) * S * Wp * kVW;
    float* orow = O + (oh - oh0) * p.OW * kVW;
    index_t ow = 0;
    for (; ow + 4 <= p.OW; ow += 4) {
      V a0 = t.bias, a1 = t.bias, a2 = t.bias, a3 = t.bias;
      const float* q0 = row + ow * step;
      for (int i = 0; i < KH; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < KW; ++j) {
          const float* q = q0 + i * tap_i + j * tap_j;
          a0 = vfma(t.w[i][j], vload(q), a0);
          a1 = vfma(t.w[i][j], vload(q + step), a1);
          a2 = vfma(t.w[i][j], vload(q + 2 * step), a2);
          a3 = vfma(t.w[i][j], vload(q + 3 * step), a3);
        }
      vstore(orow + ow * kVW, a0);
      vstore(orow + (ow + 1) * kVW, a1);
      vstore(orow + (ow + 2) * kVW, a2);
      vstore(orow + (ow + 3) * kVW, a3);
    }
    for (; ow < p.OW; ++ow) {
      V a0 = t.bias;
      const float* q0 = row + ow * step;
      for (int i = 0; i < KH; ++i)
        for (int j = 0; j < KW; ++j) a0 = vfma(t.w[i][j], vload(q0 + i * tap_i + j * tap_j), a0);
      vstore(orow + ow * kVW, a0);
    }
  }
}

// De-interleaves the band's outputs (rows [oh0, oh1) in O) into channels
// [k0, k0 + cnt) of image n of y, adding the residual and clamping.
inline void band_store(const Conv2dParams& p, const float* O, index_t n, index_t k0, index_t cnt,
                       index_t oh0, index_t oh1, float* y, const float* residual, bool clamp,
                       float lo, float hi) {
  const index_t ohw = p.OH * p.OW, qb = oh0 * p.OW, qe = oh1 * p.OW;
  index_t q = qb;
#if defined(CONVCORE_ISA_avx512)
  for (; q + 16 <= qe; q += 16) {
    __m512 r[16];
    for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_ps(O + (q - qb + j) * kVW);
    transpose16(r);  // r[c] = channel c, pixels q..q+15
    for (index_t c = 0; c < cnt; ++c) {
      const index_t off = (n * p.K + k0 + c) * ohw + q;
      __m512 v = r[c];
      if (residual) v = _mm512_add_ps(v, _mm512_loadu_ps(residual + off));
      if (clamp) v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
      _mm512_storeu_ps(y + off, v);
    }
  }
#endif
  for (index_t c = 0; c < cnt; ++c) {
    float* yc = y + (n * p.K + k0 + c) * ohw;
    const float* rc = residual ? residual + (n * p.K + k0 + c) * ohw : nullptr;
    const float* o = O + c - qb * kVW;
    for (index_t t = q; t < qe; ++t) {
      float v = o[t * kVW] + (rc ? rc[t] : 0.f);
      if (clamp) v = std::min(std::max(v, lo), hi);
      yc[t] = v;
    }
  }
}

// Output rows per band: the band's interleaved input (~96 KB) and output
// stay in L2 between the passes (a whole interleaved 112x112 plane is
// 0.8 MB: measured 1.3x slower).
inline index_t band_rows(const Conv2dParams& p, index_t S) {
  const index_t Wp = p.W + p.pad_l + p.pad_r;
  const index_t row_bytes = Wp * kVW * index_t(sizeof(float));
  return std::clamp<index_t>(((index_t(96) << 10) / row_bytes - (p.kh - 1) * p.dil_h) / S, 1,
                             p.OH);
}

// Padded input rows a band of output rows [oh0, oh1) reads.
inline index_t band_input_rows(const Conv2dParams& p, index_t S, index_t oh0, index_t oh1) {
  return (oh1 - 1 - oh0) * S + (p.kh - 1) * p.dil_h + 1;
}

}  // namespace dwc
}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
