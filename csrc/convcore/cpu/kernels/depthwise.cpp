// Direct depthwise convolution of one channel plane, vectorised along the
// output width. 3x3 and 5x5 at stride 1 and 2 (MobileNet, EfficientNet) get
// compile-time taps with the weights held in registers and four output
// vectors in flight (the FMA latency chain is otherwise the bottleneck);
// everything else, and the border columns, take the scalar path.
#include <algorithm>

#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

// p[0], p[2], ..., p[2*(kVW-1)]: reads 2*kVW floats from p.
inline V vload_even(const float* p) {
#if defined(CONVCORE_ISA_avx512)
  const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 16));
#elif defined(CONVCORE_ISA_avx2)
  const __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), 0x88);
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
#else
  return _mm_shuffle_ps(_mm_loadu_ps(p), _mm_loadu_ps(p + 4), 0x88);
#endif
}

template <int S>
inline V vload_s(const float* p) {
  if constexpr (S == 1) return vload(p);
  else return vload_even(p);
}

struct Out {
  float bias;
  bool clamp;
  float lo, hi;
};

// One output element with bounds checks (borders and generic shapes).
inline float dw_point(const Conv2dParams& p, const float* x, const float* w, index_t oh,
                      index_t ow, float bias) {
  float acc = bias;
  for (index_t i = 0; i < p.kh; ++i) {
    const index_t ih = oh * p.stride_h - p.pad_t + i * p.dil_h;
    if (ih < 0 || ih >= p.H) continue;
    for (index_t j = 0; j < p.kw; ++j) {
      const index_t iw = ow * p.stride_w - p.pad_l + j * p.dil_w;
      if (iw < 0 || iw >= p.W) continue;
      acc += w[i * p.kw + j] * x[ih * p.W + iw];
    }
  }
  return acc;
}

inline float finish(float acc, const float* r, index_t ow, const Out& o) {
  if (r) acc += r[ow];
  if (o.clamp) acc = std::min(std::max(acc, o.lo), o.hi);
  return acc;
}

inline V finish(V acc, const float* r, index_t ow, const Out& o) {
  if (r) acc = vadd(acc, vload(r + ow));
  if (o.clamp) acc = vminv(vmaxv(acc, vset1(o.lo)), vset1(o.hi));
  return acc;
}

template <int KH, int KW, int S>
void dw_fixed(const Conv2dParams& p, const float* x, const float* w, float* y,
              const float* residual, const Out& o) {
  V wv[KH][KW];
  for (int i = 0; i < KH; ++i)
    for (int j = 0; j < KW; ++j) wv[i][j] = vset1(w[i * KW + j]);
  const V vb = vset1(o.bias);
  const index_t dh = p.dil_h, dw = p.dil_w, pl = p.pad_l;
  // A vector of outputs may start at ow when every tap of it lies inside
  // the row, (stride 2) the paired loads included:
  //   ow*S - pl >= 0  and  ow*S - pl + (KW-1)*dw + S*kVW - 1 <= W - 1,
  // and its kVW outputs exist: ow + kVW <= OW. Starts are < start_lim.
  const index_t ow_lo = std::min<index_t>(p.OW, (pl + S - 1) / S);
  const index_t last = p.W - 1 + pl - (KW - 1) * dw - (S * kVW - 1);
  const index_t start_lim =
      last < 0 ? 0 : std::max<index_t>(0, std::min<index_t>(last / S + 1, p.OW - kVW + 1));
  for (index_t oh = 0; oh < p.OH; ++oh) {
    float* yr = y + oh * p.OW;
    const float* rr = residual ? residual + oh * p.OW : nullptr;
    const float* rows[KH];
    bool ok[KH];
    for (int i = 0; i < KH; ++i) {
      const index_t ih = oh * p.stride_h - p.pad_t + i * dh;
      ok[i] = ih >= 0 && ih < p.H;
      rows[i] = x + (ok[i] ? ih : 0) * p.W - pl;
    }
    index_t ow = 0;
    for (; ow < std::min(ow_lo, p.OW); ++ow)
      yr[ow] = finish(dw_point(p, x, w, oh, ow, o.bias), rr, ow, o);
    for (; ow + 3 * kVW < start_lim; ow += 4 * kVW) {
      V a0 = vb, a1 = vb, a2 = vb, a3 = vb;
      for (int i = 0; i < KH; ++i) {
        if (!ok[i]) continue;
        const float* xr = rows[i] + ow * S;
#pragma GCC unroll 8
        for (int j = 0; j < KW; ++j) {
          const float* q = xr + j * dw;
          a0 = vfma(wv[i][j], vload_s<S>(q), a0);
          a1 = vfma(wv[i][j], vload_s<S>(q + S * kVW), a1);
          a2 = vfma(wv[i][j], vload_s<S>(q + 2 * S * kVW), a2);
          a3 = vfma(wv[i][j], vload_s<S>(q + 3 * S * kVW), a3);
        }
      }
      vstore(yr + ow, finish(a0, rr, ow, o));
      vstore(yr + ow + kVW, finish(a1, rr, ow + kVW, o));
      vstore(yr + ow + 2 * kVW, finish(a2, rr, ow + 2 * kVW, o));
      vstore(yr + ow + 3 * kVW, finish(a3, rr, ow + 3 * kVW, o));
    }
    for (; ow < start_lim; ow += kVW) {
      V a0 = vb;
      for (int i = 0; i < KH; ++i) {
        if (!ok[i]) continue;
        const float* xr = rows[i] + ow * S;
#pragma GCC unroll 8
        for (int j = 0; j < KW; ++j) a0 = vfma(wv[i][j], vload_s<S>(xr + j * dw), a0);
      }
      vstore(yr + ow, finish(a0, rr, ow, o));
    }
    for (; ow < p.OW; ++ow) yr[ow] = finish(dw_point(p, x, w, oh, ow, o.bias), rr, ow, o);
  }
}

void dw_generic(const Conv2dParams& p, const float* x, const float* w, float* y,
                const float* residual, const Out& o) {
  for (index_t oh = 0; oh < p.OH; ++oh)
    for (index_t ow = 0; ow < p.OW; ++ow)
      y[oh * p.OW + ow] = finish(dw_point(p, x, w, oh, ow, o.bias),
                                 residual ? residual + oh * p.OW : nullptr, ow, o);
}

}  // namespace

void depthwise_plane(const Conv2dParams& p, const float* x, const float* w, float bias, float* y,
                     const float* residual, bool clamp, float lo, float hi) {
  const Out o{bias, clamp, lo, hi};
  const index_t s = p.stride_w;
  if (p.kh == 3 && p.kw == 3 && s == 1) return dw_fixed<3, 3, 1>(p, x, w, y, residual, o);
  if (p.kh == 3 && p.kw == 3 && s == 2) return dw_fixed<3, 3, 2>(p, x, w, y, residual, o);
  if (p.kh == 5 && p.kw == 5 && s == 1) return dw_fixed<5, 5, 1>(p, x, w, y, residual, o);
  if (p.kh == 5 && p.kw == 5 && s == 2) return dw_fixed<5, 5, 2>(p, x, w, y, residual, o);
  dw_generic(p, x, w, y, residual, o);
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
