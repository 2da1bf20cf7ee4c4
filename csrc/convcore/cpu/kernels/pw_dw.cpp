// Fused 1x1 + depthwise convolution (see PwDwArgs): for one block of kVW
// expanded channels and one band of output rows, the 1x1 is computed
// straight into the depthwise kernel's zero-padded channels-last band
// buffer (dw_cblock.h), one pixel per vector of kVW channels: the wide
// expansion never goes to memory and is never transposed. AVX-512 only
// (the band's de-interleave needs its in-register transposes).
#include <algorithm>

#include "convcore/conv2d_packed.h"
#include "convcore/cpu/kernels/dw_cblock.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

#if defined(CONVCORE_ISA_avx512)
namespace {

// P pixels q, q+1, ... of the flat input plane, NB blocks of kVW channels:
// acc[b][i] = sum_c x[c][q+i] * w_b[c][:] (one broadcast of x feeds NB
// FMAs), then bias and clamp, stored to the pixels' places in the band
// buffers (block b's buffer is b * bstride floats after block 0's).
template <int P, int NB>
inline void expand_pixels(const PwDwArgs& a, const float* x, index_t hw, const float* w,
                          const V (&bias)[NB], float* const (&dst)[P], index_t bstride) {
  const index_t wstride = a.cin * kVW;
  V acc[NB][P];
  for (int b = 0; b < NB; ++b)
    for (int i = 0; i < P; ++i) acc[b][i] = bias[b];
  for (index_t c = 0; c < a.cin; ++c) {
    V wv[NB];
    for (int b = 0; b < NB; ++b) wv[b] = vload(w + b * wstride + c * kVW);
    const float* xc = x + c * hw;
    for (int i = 0; i < P; ++i) {
      const V xv = vset1(xc[i]);
      for (int b = 0; b < NB; ++b) acc[b][i] = vfma(xv, wv[b], acc[b][i]);
    }
  }
  for (int b = 0; b < NB; ++b)
    for (int i = 0; i < P; ++i) {
      V v = acc[b][i];
      if (a.e_clamp) v = vminv(vmaxv(v, vset1(a.e_lo)), vset1(a.e_hi));
      vstore(dst[i] + b * bstride, v);
    }
}

// The expansion of input rows [ih_a, ih_b) for NB channel blocks from k0,
// into band buffers whose first data pixel is `first` (row pitch Wp).
template <int NB>
void expand_rows(const PwDwArgs& a, index_t n, index_t k0, index_t ih_a, index_t ih_b,
                 float* first, index_t Wp, index_t bstride) {
  const Conv2dParams& p = a.dw;
  const index_t hw = p.H * p.W;
  const float* x = a.x + n * a.cin * hw;
  const float* w = a.we + (k0 / kVW) * a.cin * kVW;
  V bias[NB];
  for (int b = 0; b < NB; ++b) bias[b] = vload(a.be + k0 + b * kVW);
  index_t ih = ih_a, iw = 0;  // the next pixel, advanced without divisions
  auto next = [&]() {
    float* d = first + ((ih - ih_a) * Wp + iw) * kVW;
    if (++iw == p.W) iw = 0, ++ih;
    return d;
  };
  // 12 pixels x 2 blocks: 24 accumulators + 2 weights + a broadcast (32 zmm).
  constexpr int P = NB == 2 ? 12 : 14;
  index_t q = ih_a * p.W;
  const index_t q_end = ih_b * p.W;
  for (; q + P <= q_end; q += P) {
    float* d[P];
    for (int i = 0; i < P; ++i) d[i] = next();
    expand_pixels<P, NB>(a, x + q, hw, w, bias, d, bstride);
  }
  for (; q + 4 <= q_end; q += 4) {
    float* d[4];
    for (int i = 0; i < 4; ++i) d[i] = next();
    expand_pixels<4, NB>(a, x + q, hw, w, bias, d, bstride);
  }
  for (; q < q_end; ++q) {
    float* d[1] = {next()};
    expand_pixels<1, NB>(a, x + q, hw, w, bias, d, bstride);
  }
}

// Channels [k0, k0 + nblk * kVW) (nblk 1 or 2), output rows [oh0, oh1).
template <int KH, int KW, int S>
void pw_dw_band(const PwDwArgs& a, index_t n, index_t k0, index_t nblk, index_t oh0,
                index_t oh1) {
  const Conv2dParams& p = a.dw;
  const index_t Wp = p.W + p.pad_l + p.pad_r;
  const index_t pr0 = oh0 * S, nrows = dwc::band_input_rows(p, S, oh0, oh1);
  const index_t bstride = nrows * Wp * kVW;
  thread_local AlignedFloats Bbuf, Obuf;  // the worker's, kept across calls
  if (Bbuf.size < nblk * bstride) Bbuf.resize(nblk * bstride);
  if (Obuf.size < (oh1 - oh0) * p.OW * kVW) Obuf.resize((oh1 - oh0) * p.OW * kVW);
  float* const B = Bbuf.data();
  float* const O = Obuf.data();
  // Padding (rows outside the plane, columns beside it) is zero: the
  // depthwise pads the expansion, not its input.
  const index_t ih_a = std::clamp<index_t>(pr0 - p.pad_t, 0, p.H);
  const index_t ih_b = std::clamp<index_t>(pr0 + nrows - p.pad_t, ih_a, p.H);
  for (index_t b = 0; b < nblk; ++b)
    for (index_t r = 0; r < nrows; ++r) {
      const index_t ih = pr0 + r - p.pad_t;
      float* row = B + b * bstride + r * Wp * kVW;
      if (ih < ih_a || ih >= ih_b) {
        std::fill(row, row + Wp * kVW, 0.f);
      } else {
        std::fill(row, row + p.pad_l * kVW, 0.f);
        std::fill(row + (p.pad_l + p.W) * kVW, row + Wp * kVW, 0.f);
      }
    }
  float* const first = B + ((ih_a + p.pad_t - pr0) * Wp + p.pad_l) * kVW;
  if (nblk == 2)
    expand_rows<2>(a, n, k0, ih_a, ih_b, first, Wp, bstride);
  else
    expand_rows<1>(a, n, k0, ih_a, ih_b, first, Wp, bstride);
  for (index_t b = 0; b < nblk; ++b) {
    const index_t kb = k0 + b * kVW, cnt = std::min<index_t>(kVW, p.K - kb);
    const dwc::Taps<KH, KW> taps(a.wd, a.bd, kb, cnt);
    dwc::band_outputs<KH, KW, S>(p, B + b * bstride, Wp, taps, oh0, oh1, O);
    dwc::band_store(p, O, n, kb, cnt, oh0, oh1, a.y, a.residual, a.clamp, a.lo, a.hi);
  }
}

}  // namespace

void pw_dw(const PwDwArgs& a, index_t n, index_t k0, index_t nblk, index_t oh0, index_t oh1) {
  const Conv2dParams& p = a.dw;
  nblk = std::clamp<index_t>(nblk, 1, 2);
#define CC_PWDW(KH, S)                                                             \
  if (p.kh == KH && p.kw == KH && p.stride_h == S && p.stride_w == S)              \
    return pw_dw_band<KH, KH, S>(a, n, k0, nblk, oh0, oh1);
  CC_PWDW(3, 1)
  CC_PWDW(3, 2)
  CC_PWDW(5, 1)
  CC_PWDW(5, 2)
#undef CC_PWDW
  fail("conv2d", "internal error: fused 1x1 + depthwise called for an unsupported geometry");
}
#endif

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
