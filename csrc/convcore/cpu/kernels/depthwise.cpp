// Direct depthwise convolution of one channel plane, vectorised along the
// output width. 3x3 and 5x5 at stride 1 and 2 (MobileNet, EfficientNet) get
// compile-time taps with the weights held in registers and four output
// vectors in flight (the FMA latency chain is otherwise the bottleneck);
// everything else, and the border columns, take the scalar path.
#include <algorithm>
#include <vector>

#include "convcore/cpu/kernels/dw_cblock.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

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

// Lanes t in [lo, hi) of p[t] (others zero), touching no memory outside.
inline V vload_part(const float* p, index_t lo, index_t hi) {
#if defined(CONVCORE_ISA_avx512)
  const __mmask16 m = __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
  return _mm512_maskz_loadu_ps(m, p);
#elif defined(CONVCORE_ISA_avx2)
  const __m256i t = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(int(hi)), t),
                                     _mm256_cmpgt_epi32(t, _mm256_set1_epi32(int(lo) - 1)));
  return _mm256_maskload_ps(p, m);
#else
  alignas(16) float b[kVW] = {};
  for (index_t t = lo; t < hi; ++t) b[t] = p[t];
  return vloada(b);
#endif
}

// Positions t in [lo, hi) of the 2*kVW floats at p; returns the even ones.
inline V vload_even_part(const float* p, index_t lo, index_t hi) {
  const V a = vload_part(p, std::min<index_t>(lo, kVW), std::min<index_t>(hi, kVW));
  const V b = vload_part(p + kVW, std::max<index_t>(lo - kVW, 0), std::max<index_t>(hi - kVW, 0));
  return veven(a, b);
}

// Input vector for the outputs [ow, ow+kVW) of one tap whose row starts at
// xr (already offset by the tap's column): zero where the tap is padding.
template <int S>
inline V tap_load(const float* xr, index_t base, index_t W) {
  constexpr index_t span = S * kVW;
  if (base >= 0 && base + span <= W) return vload_s<S>(xr + base);
  const index_t lo = std::clamp<index_t>(-base, 0, span), hi = std::clamp<index_t>(W - base, 0, span);
  if (lo >= hi) return vzero();
  if constexpr (S == 1) return vload_part(xr + base, lo, hi);
  else return vload_even_part(xr + base, lo, hi);
}

// Stores lanes [0, n) (n <= kVW) of v: the last partial vector of a row.
inline void store_part(float* y, V v, index_t n) {
  alignas(64) float b[kVW];
  vstore(b, v);
  for (index_t t = 0; t < n; ++t) y[t] = b[t];
}

// Scratch of one worker for all the planes of one call (one shape): the
// buffer's padding is zeroed once and stays zero; only the interior is
// rewritten per plane.
struct Scratch {
  std::vector<float> buf, out, zeros;
  bool ready = false;
  std::vector<index_t> key;  // the geometry `ready` refers to
};

// The worker's scratch, kept across jobs and calls: zeroing a padded buffer
// per job of a few planes would cost more than the convolution.
Scratch& scratch_for(const Conv2dParams& p) {
  thread_local Scratch sc;
  const std::vector<index_t> key = {p.H, p.W, p.OH, p.OW, p.kh, p.kw, p.stride_h, p.stride_w,
                                    p.pad_t, p.pad_l, p.pad_b, p.pad_r, p.dil_h, p.dil_w,
                                    p.K / p.C};
  if (key != sc.key) {
    sc.ready = false;
    sc.key = key;
  }
  return sc;
}

// RB output rows at once: RB independent FMA chains per vector position
// (one chain is latency-bound: 9 dependent FMAs x 4 cycles per vector).
// Rows of taps that fall in the padding point at a zero row.
template <int KH, int KW, int S, int RB>
inline void dw_rows(const Conv2dParams& p, const float* x, const V (&wv)[KH][KW], V vb,
                    const float* zrow, index_t oh0, index_t ow_lo, index_t start_lim, float* y,
                    const float* residual, const Out& o) {
  const index_t dh = p.dil_h, dw = p.dil_w, pl = p.pad_l, W = p.W;
  const float* rows[RB][KH];
  for (int r = 0; r < RB; ++r)
    for (int i = 0; i < KH; ++i) {
      const index_t ih = (oh0 + r) * p.stride_h - p.pad_t + i * dh;
      rows[r][i] = ih >= 0 && ih < p.H ? x + ih * W : zrow;
    }
  for (index_t ow = 0; ow < p.OW; ow += kVW) {
    V a[RB];
    for (int r = 0; r < RB; ++r) a[r] = vb;
    const index_t base = ow * S - pl;
    if (ow >= ow_lo && ow < start_lim) {
      for (int i = 0; i < KH; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < KW; ++j)
#pragma GCC unroll 4
          for (int r = 0; r < RB; ++r)
            a[r] = vfma(wv[i][j], vload_s<S>(rows[r][i] + base + j * dw), a[r]);
    } else {
      for (int i = 0; i < KH; ++i)
        for (int j = 0; j < KW; ++j)
#pragma GCC unroll 4
          for (int r = 0; r < RB; ++r)
            a[r] = vfma(wv[i][j], tap_load<S>(rows[r][i], base + j * dw, W), a[r]);
    }
    const index_t n = std::min<index_t>(kVW, p.OW - ow);
    for (int r = 0; r < RB; ++r) {
      float* yr = y + (oh0 + r) * p.OW;
      const float* rr = residual ? residual + (oh0 + r) * p.OW : nullptr;
      if (n == kVW) {
        vstore(yr + ow, finish(a[r], rr, ow, o));
      } else {
        alignas(64) float b[kVW] = {};
        if (rr) for (index_t t = 0; t < n; ++t) b[t] = rr[ow + t];
        store_part(yr + ow, finish(a[r], rr ? b : nullptr, 0, o), n);
      }
    }
  }
}

template <int KH, int KW, int S>
void dw_fixed(const Conv2dParams& p, const float* x, const float* w, float* y,
              const float* residual, const Out& o, Scratch& sc) {
  V wv[KH][KW];
  for (int i = 0; i < KH; ++i)
    for (int j = 0; j < KW; ++j) wv[i][j] = vset1(w[i * KW + j]);
  const V vb = vset1(o.bias);
  const index_t dw = p.dil_w, pl = p.pad_l, W = p.W;
  // A vector of outputs [ow, ow+kVW) takes plain loads when every tap lies
  // inside the row, (stride 2) the paired loads included:
  //   ow*S - pl >= 0  and  ow*S - pl + (KW-1)*dw + S*kVW - 1 <= W - 1,
  // and its outputs exist; the border vectors take masked loads.
  const index_t ow_lo = (pl + S - 1) / S;
  const index_t last = W - 1 + pl - (KW - 1) * dw - (S * kVW - 1);
  const index_t start_lim =
      last < 0 ? 0 : std::max<index_t>(0, std::min<index_t>(last / S + 1, p.OW - kVW + 1));
  std::vector<float>& zeros = sc.zeros;
  if (index_t(zeros.size()) < W + 2 * S * kVW + KW * dw) zeros.assign(size_t(W + 2 * S * kVW + KW * dw), 0.f);
  index_t oh = 0;
  for (; oh + 4 <= p.OH; oh += 4)
    dw_rows<KH, KW, S, 4>(p, x, wv, vb, zeros.data(), oh, ow_lo, start_lim, y, residual, o);
  for (; oh < p.OH; ++oh)
    dw_rows<KH, KW, S, 1>(p, x, wv, vb, zeros.data(), oh, ow_lo, start_lim, y, residual, o);
}

// y[0:n] = clamp(src + residual): branches hoisted so the loops vectorise.
inline void copy_out(const float* src, const float* rr, float* y, index_t n, const Out& o) {
  if (rr) {
    for (index_t i = 0; i < n; ++i) y[i] = src[i] + rr[i];
    src = y;
  }
  if (o.clamp) {
    const float lo = o.lo, hi = o.hi;
    for (index_t i = 0; i < n; ++i) y[i] = std::min(std::max(src[i], lo), hi);
  } else if (!rr) {
    for (index_t i = 0; i < n; ++i) y[i] = src[i];
  }
}

// Narrow planes (OW of a few vectors): copy the plane once into a
// zero-padded buffer so every load is a plain one. At stride 1 the output is
// computed over the flattened padded plane (q = oh*Wp + ow: each tap is a
// fixed shift), so 7- and 14-wide rows still fill whole vectors; the
// columns ow >= OW of each padded row are discarded.
template <int KH, int KW, int S>
void dw_padded(const Conv2dParams& p, const float* x, const float* w, float* y,
               const float* residual, const Out& o, Scratch& sc) {
  const index_t dh = p.dil_h, dw = p.dil_w;
  const index_t OWv = (p.OW + kVW - 1) / kVW * kVW;
  // Row stride: the padded row, and at stride 2 room for the last vector.
  // At stride 2 each padded row is stored as its even columns then its odd
  // columns (Wh each), so every tap is a plain unit-stride load.
  const index_t Wh = (p.W + p.pad_l + p.pad_r + 1) / 2 + OWv + (KW - 1) * dw / 2 + 1;
  const index_t Wp = S == 1 ? p.W + p.pad_l + p.pad_r : 2 * Wh;
  const index_t Hp = std::max<index_t>(p.H + p.pad_t + p.pad_b, (p.OH + 3) * S + (KH - 1) * dh + 1);
  const index_t slack = S * 4 * kVW + (KW - 1) * dw + Wp;
  // The padding of the buffer stays zero between planes of one shape: only
  // the interior is rewritten (the buffer is zeroed once per call).
  std::vector<float>& buf = sc.buf;
  std::vector<float>& out = sc.out;
  if (!sc.ready) {
    buf.assign(size_t(Hp * Wp + slack), 0.f);
    sc.ready = true;
  }
  for (index_t h = 0; h < p.H; ++h) {
    const float* src = x + h * p.W;
    float* dst = buf.data() + (h + p.pad_t) * Wp;
    if constexpr (S == 1) {
      for (index_t t = 0; t < p.W; ++t) dst[p.pad_l + t] = src[t];
    } else {
      // E[k] = src[2k - pad_l], O[k] = src[2k + 1 - pad_l], where inside
      for (int par = 0; par < 2; ++par) {
        float* d = dst + par * Wh;
        const index_t off = par - p.pad_l;  // source index of d[k] is 2k + off
        const index_t k0 = off >= 0 ? 0 : (-off + 1) / 2;
        const index_t k1 = p.W - off <= 0 ? 0 : (p.W - 1 - off) / 2 + 1;
        // Vectors may read past the row (not past the plane) and write past
        // k1; the columns past k1 are padding and are zeroed again after.
        const float* plane_end = x + p.H * p.W;
        index_t k = k0;
        for (; k < k1 && src + 2 * (k + kVW) + off <= plane_end; k += kVW)
          vstore(d + k, vload_even(src + 2 * k + off));
        if (k > k1) {
          std::fill(d + k1, d + k, 0.f);
        } else {
          for (; k < k1; ++k) d[k] = src[2 * k + off];
        }
      }
    }
  }
  V wv[KH][KW];
  for (int i = 0; i < KH; ++i)
    for (int j = 0; j < KW; ++j) wv[i][j] = vset1(w[i * KW + j]);
  const V vb = vset1(o.bias);
  const float* P = buf.data();
  if constexpr (S == 1) {
    const index_t total = (p.OH - 1) * Wp + p.OW;  // last flattened output + 1
    const index_t nv = (total + kVW - 1) / kVW * kVW;
    out.resize(size_t(nv + 4 * kVW));
    float* Y = out.data();
    index_t q = 0;
    for (; q + 4 * kVW <= nv; q += 4 * kVW) {
      V a0 = vb, a1 = vb, a2 = vb, a3 = vb;
      for (int i = 0; i < KH; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < KW; ++j) {
          const float* r = P + q + i * dh * Wp + j * dw;
          a0 = vfma(wv[i][j], vload(r), a0);
          a1 = vfma(wv[i][j], vload(r + kVW), a1);
          a2 = vfma(wv[i][j], vload(r + 2 * kVW), a2);
          a3 = vfma(wv[i][j], vload(r + 3 * kVW), a3);
        }
      vstore(Y + q, a0);
      vstore(Y + q + kVW, a1);
      vstore(Y + q + 2 * kVW, a2);
      vstore(Y + q + 3 * kVW, a3);
    }
    for (; q < nv; q += kVW) {
      V a0 = vb;
      for (int i = 0; i < KH; ++i)
        for (int j = 0; j < KW; ++j) a0 = vfma(wv[i][j], vload(P + q + i * dh * Wp + j * dw), a0);
      vstore(Y + q, a0);
    }
    for (index_t oh = 0; oh < p.OH; ++oh) {
      const float* src = Y + oh * Wp;
      float* yr = y + oh * p.OW;
      const float* rr = residual ? residual + oh * p.OW : nullptr;
      copy_out(src, rr, yr, p.OW, o);
    }
  } else {
    // Four output rows per pass (four FMA chains); Hp leaves room for the
    // rows past OH that the last pass computes and drops.
    out.resize(size_t(4 * OWv));
    float* Y = out.data();
    for (index_t oh = 0; oh < p.OH; oh += 4) {
      for (index_t ow = 0; ow < OWv; ow += kVW) {
        V a0 = vb, a1 = vb, a2 = vb, a3 = vb;
        for (int i = 0; i < KH; ++i) {
          const float* r = P + (oh * S + i * dh) * Wp + ow;
#pragma GCC unroll 8
          for (int j = 0; j < KW; ++j) {
            const float* q = r + ((j * dw) & 1) * Wh + ((j * dw) >> 1);
            a0 = vfma(wv[i][j], vload(q), a0);
            a1 = vfma(wv[i][j], vload(q + S * Wp), a1);
            a2 = vfma(wv[i][j], vload(q + 2 * S * Wp), a2);
            a3 = vfma(wv[i][j], vload(q + 3 * S * Wp), a3);
          }
        }
        vstore(Y + ow, a0);
        vstore(Y + OWv + ow, a1);
        vstore(Y + 2 * OWv + ow, a2);
        vstore(Y + 3 * OWv + ow, a3);
      }
      for (index_t r = 0; r < 4 && oh + r < p.OH; ++r) {
        float* yr = y + (oh + r) * p.OW;
        const float* rr = residual ? residual + (oh + r) * p.OW : nullptr;
        copy_out(Y + r * OWv, rr, yr, p.OW, o);
      }
    }
  }
}

// Small planes, one channel per lane (dw_cblock.h): kVW channels are
// interleaved into the zero-padded channels-last band buffer, convolved,
// then de-interleaved with the epilogue. The interleave costs about a copy;
// it pays where a row holds less than a few vectors. The plane goes through
// in bands of output rows so that a band's buffers stay in L2.
template <int KH, int KW, int S>
void dw_cblock(const Conv2dParams& p, const float* x, const float* w, const float* bias,
               float* y, const float* residual, bool clamp, float lo, float hi, index_t n,
               index_t k0, index_t cnt, Scratch& sc) {
  const index_t hw = p.H * p.W;
  const index_t Wp = p.W + p.pad_l + p.pad_r;
  const index_t RB = dwc::band_rows(p, S);
  const index_t rows_in = dwc::band_input_rows(p, S, 0, RB);
  if (!sc.ready) {  // padding columns stay zero: only data columns are written
    sc.buf.assign(size_t(rows_in * Wp * kVW), 0.f);
    sc.out.assign(size_t(RB * p.OW * kVW), 0.f);
    sc.ready = true;
  }
  float* B = sc.buf.data();
  float* O = sc.out.data();
  const float* xn = x + (n * p.C + k0) * hw;
  const dwc::Taps<KH, KW> taps(w, bias, k0, cnt);

  for (index_t oh0 = 0; oh0 < p.OH; oh0 += RB) {
    const index_t oh1 = std::min(p.OH, oh0 + RB);
    // Interleave the band's input rows (padded rows pr0.. of the plane):
    // rows outside the input are zeroed, the others go 16 pixels at a time
    // through the flattened rows (narrow rows fill whole transposes too).
    const index_t pr0 = oh0 * S, nrows = dwc::band_input_rows(p, S, oh0, oh1);
    const index_t ih_a = std::clamp<index_t>(pr0 - p.pad_t, 0, p.H);
    const index_t ih_b = std::clamp<index_t>(pr0 + nrows - p.pad_t, ih_a, p.H);
    for (index_t r = 0; r < nrows; ++r) {
      const index_t ih = pr0 + r - p.pad_t;
      if (ih < ih_a || ih >= ih_b) {
        float* Brow = B + (r * Wp + p.pad_l) * kVW;
        std::fill(Brow, Brow + p.W * kVW, 0.f);
      }
    }
    auto dst = [&](index_t ih, index_t iw) {
      return B + ((ih + p.pad_t - pr0) * Wp + p.pad_l + iw) * kVW;
    };
    const index_t q_end = ih_b * p.W;
    index_t q = ih_a * p.W;
#if defined(CONVCORE_ISA_avx512)
    index_t ih = ih_a, iw = 0;  // pixel q, advanced without divisions
    for (; q + 16 <= q_end; q += 16) {
      __m512 v[16];
      for (int c = 0; c < 16; ++c)
        v[c] = c < cnt ? _mm512_loadu_ps(xn + c * hw + q) : _mm512_setzero_ps();
      dwc::transpose16(v);
      for (int j = 0; j < 16; ++j) {
        _mm512_storeu_ps(dst(ih, iw), v[j]);
        if (++iw == p.W) iw = 0, ++ih;
      }
    }
#endif
    for (; q < q_end; ++q) {
      float* d = dst(q / p.W, q % p.W);
      for (index_t c = 0; c < kVW; ++c) d[c] = c < cnt ? xn[c * hw + q] : 0.f;
    }
    dwc::band_outputs<KH, KW, S>(p, B, Wp, taps, oh0, oh1, O);
    dwc::band_store(p, O, n, k0, cnt, oh0, oh1, y, residual, clamp, lo, hi);
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

void depthwise(const Conv2dParams& p, const float* x, const float* w, const float* bias,
               float* y, const float* residual, bool clamp, float lo, float hi, index_t nk0,
               index_t nk1) {
  const index_t mult = p.K / p.C, hw = p.H * p.W, ohw = p.OH * p.OW, khw = p.kh * p.kw;
  const index_t s = p.stride_w;
  // Padded-buffer path for every plane at stride 1 or 2 (measured 1.3-2x
  // faster than masked border vectors even on 112-wide rows).
  const bool narrow = p.stride_h == s && (s == 1 || s == 2);
  Scratch& sc = scratch_for(p);
  // Channel-interleaved path: small planes, one output channel per input
  // channel. Lanes are independent, so how channels group into blocks (it
  // depends on the thread split) does not change any result.
  // Measured on AVX-512 (Zen 4): it wins at stride 2 for every width and at
  // stride 1 up to 56-wide rows (the padded-plane path wins at 112); without
  // the in-register transposes (the other ISAs) only on the narrowest planes.
  const bool cblock_wins = kVW == 16 ? (s == 2 || p.OW <= 64) : 2 * p.OW <= kVW;
  if (narrow && mult == 1 && cblock_wins) {
#define CC_DWC(KH, KW, S)                                                                \
  if (p.kh == KH && p.kw == KW && s == S) {                                              \
    for (index_t nk = nk0; nk < nk1;) {                                                  \
      const index_t n = nk / p.K, k = nk % p.K;                                          \
      const index_t cnt = std::min<index_t>({kVW, nk1 - nk, p.K - k});                   \
      dw_cblock<KH, KW, S>(p, x, w, bias, y, residual, clamp, lo, hi, n, k, cnt, sc);    \
      nk += cnt;                                                                         \
    }                                                                                    \
    return;                                                                              \
  }
    CC_DWC(3, 3, 1)
    CC_DWC(3, 3, 2)
    CC_DWC(5, 5, 1)
    CC_DWC(5, 5, 2)
#undef CC_DWC
  }
  for (index_t nk = nk0; nk < nk1; ++nk) {
    const index_t k = nk % p.K, n = nk / p.K, c = k / mult;
    const float* xc = x + (n * p.C + c) * hw;
    const float* wk = w + k * khw;
    float* yk = y + nk * ohw;
    const float* rk = residual ? residual + nk * ohw : nullptr;
    const Out o{bias ? bias[k] : 0.f, clamp, lo, hi};
#define CC_DW(KH, KW, S)                                                   \
  if (p.kh == KH && p.kw == KW && s == S) {                                \
    if (narrow) dw_padded<KH, KW, S>(p, xc, wk, yk, rk, o, sc);            \
    else dw_fixed<KH, KW, S>(p, xc, wk, yk, rk, o, sc);                    \
    continue;                                                              \
  }
    CC_DW(3, 3, 1)
    CC_DW(3, 3, 2)
    CC_DW(5, 5, 1)
    CC_DW(5, 5, 2)
#undef CC_DW
    dw_generic(p, xc, wk, yk, rk, o);
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
