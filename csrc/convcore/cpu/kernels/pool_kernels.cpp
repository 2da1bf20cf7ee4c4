// Pooling row kernels (one copy per ISA). Pooling runs as a vertical pass
// (elementwise over the window's input rows, contiguous) into a padded row,
// then a horizontal pass along the row; stride 1 and 2 are vectorised
// (stride 2 by de-interleaving two vectors into even/odd lanes).
#include "convcore/cpu/kernels/backward_table.h"
#include "convcore/cpu/kernels/pool_fwd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif


namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

typedef int vi __attribute__((vector_size(kVW * sizeof(int))));
#if defined(CONVCORE_ISA_avx512)
constexpr vi kEven = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
#elif defined(CONVCORE_ISA_avx2)
constexpr vi kEven = {0, 2, 4, 6, 8, 10, 12, 14};
#else
constexpr vi kEven = {0, 2, 4, 6};
#endif

// Interleave a and b: lanes a0 b0 a1 b1 ... (lo: first kVW, hi: the rest).
inline void zip(vf a, vf b, vf* lo, vf* hi) {
#if defined(__clang__)
  for (int l = 0; l < kVW / 2; ++l) {
    (*lo)[2 * l] = a[l]; (*lo)[2 * l + 1] = b[l];
    (*hi)[2 * l] = a[l + kVW / 2]; (*hi)[2 * l + 1] = b[l + kVW / 2];
  }
#else
  vi ml, mh;
  for (int l = 0; l < kVW / 2; ++l) {
    ml[2 * l] = l; ml[2 * l + 1] = l + kVW;
    mh[2 * l] = l + kVW / 2; mh[2 * l + 1] = l + kVW + kVW / 2;
  }
  *lo = __builtin_shuffle(a, b, ml);
  *hi = __builtin_shuffle(a, b, mh);
#endif
}

// Lanes p[0], p[2], ..., p[2*(kVW-1)].
inline vf load_even(const float* p) {
#if defined(__clang__)
  vf r;
  for (int l = 0; l < kVW; ++l) r[l] = p[2 * l];
  return r;
#else
  return __builtin_shuffle(load(p), load(p + kVW), kEven);
#endif
}
// max that propagates NaN from either side
inline vf vmax_nan(vf acc, vf v) { return (v > acc) | (v != v) ? v : acc; }
inline float max_nan1(float acc, float v) { return (v > acc || v != v) ? v : acc; }

}  // namespace

float max_nan(index_t n, const float* x) {
  index_t i = 0;
  float m = -__builtin_inff();
  if (n >= kVW) {
    vf a = load(x);
    for (i = kVW; i + kVW <= n; i += kVW) a = vmax_nan(a, load(x + i));
    for (int l = 0; l < kVW; ++l) m = max_nan1(m, a[l]);
  }
  for (; i < n; ++i) m = max_nan1(m, x[i]);
  return m;
}

void pool_vmax(index_t n, const float* src, float* acc) {
  index_t i = 0;
  for (; i + kVW <= n; i += kVW) store(acc + i, vmax_nan(load(acc + i), load(src + i)));
  for (; i < n; ++i) acc[i] = max_nan1(acc[i], src[i]);
}

void pool_vadd(index_t n, const float* src, float* acc) {
  index_t i = 0;
  for (; i + kVW <= n; i += kVW) store(acc + i, load(acc + i) + load(src + i));
  for (; i < n; ++i) acc[i] += src[i];
}

namespace {

// One sweep over the window's rows per vector of columns: the running max
// (or sum) stays in a register and dst is written once, instead of a copy
// plus a read-modify-write pass per row. Rows are combined in order, so the
// result (NaN choice, rounding) is that of the row-by-row kernels above. For
// n >= kVW the ragged end is one overlapping vector (pure function of src),
// so there is no scalar tail.
template <typename Op, typename Op1>
inline void vertical_rows(index_t n, const float* src, index_t pitch, index_t nrows, float* dst,
                          Op op, Op1 op1) {
  auto block = [&](index_t i) {
    vf a = load(src + i);
    for (index_t r = 1; r < nrows; ++r) a = op(a, load(src + r * pitch + i));
    store(dst + i, a);
  };
  if (n >= kVW) {
    index_t i = 0;
    for (; i + kVW <= n; i += kVW) block(i);
    if (i < n) block(n - kVW);
    return;
  }
  for (index_t i = 0; i < n; ++i) {
    float a = src[i];
    for (index_t r = 1; r < nrows; ++r) a = op1(a, src[r * pitch + i]);
    dst[i] = a;
  }
}

}  // namespace

void pool_vmax_rows(index_t n, const float* src, index_t pitch, index_t nrows, float* dst) {
  vertical_rows(n, src, pitch, nrows, dst, vmax_nan, max_nan1);
}

void pool_vadd_rows(index_t n, const float* src, index_t pitch, index_t nrows, float* dst) {
  vertical_rows(n, src, pitch, nrows, dst, [](vf a, vf b) { return a + b; },
                [](float a, float b) { return a + b; });
}

// Output blocks of kVW; the ragged end is one more block that overlaps the
// previous one (outputs are pure functions of the input, so recomputing a
// few is harmless and cheaper than a scalar tail).
template <typename Block>
index_t vector_blocks(index_t OW, Block&& block) {
  if (OW < kVW) return 0;
  index_t ow = 0;
  for (; ow + kVW <= OW; ow += kVW) block(ow);
  if (ow < OW) block(OW - kVW);
  return OW;
}

void pool_hmax(index_t OW, index_t sw, index_t kw, index_t dw, const float* row, float* y) {
  index_t ow = 0;
  if (sw == 1) {
    ow = vector_blocks(OW, [&](index_t o) {
      vf a = load(row + o);
      for (index_t j = 1; j < kw; ++j) a = vmax_nan(a, load(row + o + j * dw));
      store(y + o, a);
    });
  } else if (sw == 2) {
    ow = vector_blocks(OW, [&](index_t o) {
      vf a = load_even(row + 2 * o);
      for (index_t j = 1; j < kw; ++j) a = vmax_nan(a, load_even(row + 2 * o + j * dw));
      store(y + o, a);
    });
  }
  for (; ow < OW; ++ow) {
    const float* r = row + ow * sw;
    float a = r[0];
    for (index_t j = 1; j < kw; ++j) a = max_nan1(a, r[j * dw]);
    y[ow] = a;
  }
}

void pool_havg(index_t OW, index_t sw, index_t kw, const float* row, const float* div, float* y) {
  index_t ow = 0;
  if (sw == 1) {
    ow = vector_blocks(OW, [&](index_t o) {
      vf a = load(row + o);
      for (index_t j = 1; j < kw; ++j) a += load(row + o + j);
      store(y + o, a / load(div + o));
    });
  } else if (sw == 2) {
    ow = vector_blocks(OW, [&](index_t o) {
      vf a = load_even(row + 2 * o);
      for (index_t j = 1; j < kw; ++j) a += load_even(row + 2 * o + j);
      store(y + o, a / load(div + o));
    });
  }
  for (; ow < OW; ++ow) {
    const float* r = row + ow * sw;
    float a = r[0];
    for (index_t j = 1; j < kw; ++j) a += r[j];
    y[ow] = a / div[ow];
  }
}

void pool_avg_hgather(index_t W, index_t sw, index_t kw, index_t pl, const float* g, float* out) {
  index_t iw = 0;
  if (sw == 1 && W >= kVW) {
    // out[iw] = sum_j g[iw + pl - j]
    vector_blocks(W, [&](index_t o) {
      vf a = load(g + o + pl);
      for (index_t j = 1; j < kw; ++j) a += load(g + o + pl - j);
      store(out + o, a);
    });
    return;
  }
  if (sw == 2) {
    // Blocks of 2*kVW outputs whose padded column c = iw + pl starts even:
    // even c = 2t gets the even taps (j = 2u: g[t - u]), odd c = 2t + 1 the
    // odd taps (j = 2u + 1: g[t - u]); the two sums are interleaved.
    const index_t start = pl % 2;
    for (; iw < start && iw < W; ++iw) {
      float a = 0.f;
      for (index_t j = 0; j < kw; ++j)
        if ((iw + pl - j) % 2 == 0) a += g[(iw + pl - j) / 2];
      out[iw] = a;
    }
    auto block = [&](index_t i0) {
      const index_t t = (i0 + pl) / 2;
      vf ae = load(g + t), ao = kw > 1 ? load(g + t) : vf{};
      for (index_t u = 1; 2 * u < kw; ++u) ae += load(g + t - u);
      for (index_t u = 1; 2 * u + 1 < kw; ++u) ao += load(g + t - u);
      vf lo, hi;
      zip(ae, ao, &lo, &hi);
      store(out + i0, lo);
      store(out + i0 + kVW, hi);
    };
    for (; iw + 2 * kVW <= W; iw += 2 * kVW) block(iw);
    // the ragged end: one more block overlapping the last (same parity)
    index_t last = W - 2 * kVW;
    if (last >= start && (last - start) % 2 != 0) --last;
    if (iw < W && last >= start) {
      block(last);
      iw = last + 2 * kVW;  // W or W - 1 (parity): the scalar loop ends it
    }
  }
  for (; iw < W; ++iw) {
    float a = 0.f;
    for (index_t j = 0; j < kw; ++j) {
      const index_t c = iw + pl - j;  // may be negative: g has padding before
      const index_t cc = c + sw * (kw + 1);
      if (cc % sw == 0) a += g[cc / sw - (kw + 1)];
    }
    out[iw] = a;
  }
}

void pool_argmax_row(const PoolArgmaxRow& r) {
  const index_t OW = r.OW, sw = r.sw;
  index_t ow = 0;
  if (sw <= 2) {
    vi lane;
    for (int l = 0; l < kVW; ++l) lane[l] = int(l * sw);
    auto block = [&](index_t ow) {
      vf best = splat(-__builtin_inff());
      vi arg = (vi)load(reinterpret_cast<const float*>(r.first_col + ow)) + int(r.ih0 * r.W);
      for (index_t i = 0; i < r.nrows; ++i) {
        const index_t ih = r.ih0 + i * r.dil_h;
        const float* row = r.buf + ih * r.pitch + ow * sw;
        const int base = int(ih * r.W + ow * sw - r.pad_l);
        for (index_t j = 0; j < r.kw; ++j) {
          const vf v = sw == 1 ? load(row + j * r.dw) : load_even(row + j * r.dw);
          const vi win = (v > best) | (v != v);
          best = win ? v : best;
          arg = win ? lane + int(base + j * r.dw) : arg;
        }
      }
      if (r.y) store(r.y + ow, best);
      store(reinterpret_cast<float*>(r.arg + ow), (vf)arg);
    };
    if (OW < kVW && r.narrow_ok) {
      block(0);
      ow = OW;
    } else {
      ow = vector_blocks(OW, block);
    }
  }
  for (; ow < OW; ++ow) {
    float best = -__builtin_inff();
    int arg = int(r.ih0 * r.W) + r.first_col[ow];
    for (index_t i = 0; i < r.nrows; ++i) {
      const index_t ih = r.ih0 + i * r.dil_h;
      const float* row = r.buf + ih * r.pitch + ow * sw;
      for (index_t j = 0; j < r.kw; ++j) {
        const float v = row[j * r.dw];
        if (v > best || v != v) {
          best = v;
          arg = int(ih * r.W + ow * sw + j * r.dw - r.pad_l);
        }
      }
    }
    if (r.y) r.y[ow] = best;
    r.arg[ow] = arg;
  }
}

// ---------------------------------------------------------------------------
// Fused forward pooling (pool_fwd.h): whole planes, one pass per output row.
//
// Max pooling has a fast form, the plain x86 max (v > acc ? v : acc, ties
// keep acc), and an exact form in which a NaN wins (the row-buffer kernels'
// arithmetic); they agree bit for bit on NaN-free input. Each block of
// outputs runs the fast form while collecting "some input is NaN" from its
// loads, and is redone in the exact form if so.

namespace {

#define CC_INLINE inline __attribute__((always_inline))

// N-lane vectors for N = kVW, kVW/2, ..., 4: narrow rows (13, 27 outputs)
// use half-width blocks instead of a scalar loop.
template <int N>
struct VecOf {
  typedef float type __attribute__((vector_size(N * sizeof(float))));
};
template <int N>
using V = typename VecOf<N>::type;

template <int N>
inline V<N> ldv(const float* p) {
  V<N> r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
template <int N>
inline void stv(float* p, V<N> v) {
  std::memcpy(p, &v, sizeof v);
}
template <int N, size_t... I>
inline V<N> bcast_(float s, std::index_sequence<I...>) {
  return V<N>{((void)I, s)...};
}
// (Not V{} + s, which is an add: -0 + 0 = +0.)
template <int N>
inline V<N> bcast(float s) {
  return bcast_<N>(s, std::make_index_sequence<N>{});
}

template <int N, size_t... I>
inline V<N> even_lanes(V<N> a, V<N> b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, int(2 * I)...);
}
template <int N, size_t... I>
inline V<N> odd_lanes(V<N> a, V<N> b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, int(2 * I + 1)...);
}
// a[1], ..., a[N-1], b[0]
template <int N, size_t... I>
inline V<N> shift_in(V<N> a, V<N> b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, int(I + 1)...);
}
// a[2], ..., a[N-1], b[0], b[1]
template <int N, size_t... I>
inline V<N> shift2_in(V<N> a, V<N> b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, int(I + 2)...);
}

// Blocks whose windows reach into the padding (edge blocks) load whole
// vectors and replace the lanes outside the row by the identity: the lanes
// read the neighbouring row, harmless, except before the first or past the
// last row of the tensor, where they load with a lane mask instead.
template <int N>
struct IVecOf {
  typedef int type __attribute__((vector_size(N * sizeof(int))));
};
template <int N>
using VI = typename IVecOf<N>::type;
template <int N, size_t... I>
inline VI<N> iota_(std::index_sequence<I...>) {
  return VI<N>{int(I)...};
}
// -1 in lanes l with 0 <= c0 + l < W.
template <int N>
CC_INLINE VI<N> lanes_in(index_t c0, index_t W) {
  const VI<N> c = iota_<N>(std::make_index_sequence<N>{}) + int(c0);
  return (c >= 0) & (c < int(W));
}

// Lanes l with 0 <= c0 + l < W load p[l]; the others are `fill`.
template <int N>
CC_INLINE V<N> ldv_cols(const float* p, index_t c0, index_t W, float fill) {
#if defined(CONVCORE_ISA_avx512)
  const index_t lo = std::max<index_t>(0, -c0), hi = std::min<index_t>(N, W - c0);
  const unsigned m = hi <= lo ? 0u : ((hi >= 32 ? ~0u : (1u << hi) - 1) & ~((1u << lo) - 1));
  if constexpr (N == 16) return V<N>(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), __mmask16(m), p));
  else if constexpr (N == 8) return V<N>(_mm256_mask_loadu_ps(_mm256_set1_ps(fill), __mmask8(m), p));
  else return V<N>(_mm_mask_loadu_ps(_mm_set1_ps(fill), __mmask8(m), p));
#else
  V<N> r = bcast<N>(fill);
  for (int l = 0; l < N; ++l)
    if (c0 + l >= 0 && c0 + l < W) r[l] = p[l];
  return r;
#endif
}

// "Some input is NaN" over a block's loads: one unordered compare per pair
// of vectors into a mask on AVX-512, else a running sum (NaN if an input is;
// both infinities give a false alarm that only costs the exact pass).
template <int N>
struct NanCheck {
#if defined(CONVCORE_ISA_avx512)
  // (Kept in a mask register: kor, no round trip through a GPR.)
  __mmask16 m = 0;
  void add(V<N> a, V<N> b) {
    if constexpr (N == 16) m = _kor_mask16(m, _mm512_cmp_ps_mask(__m512(a), __m512(b), _CMP_UNORD_Q));
    else if constexpr (N == 8) m = _kor_mask16(m, _mm256_cmp_ps_mask(__m256(a), __m256(b), _CMP_UNORD_Q));
    else m = _kor_mask16(m, _mm_cmp_ps_mask(__m128(a), __m128(b), _CMP_UNORD_Q));
  }
  bool any() const { return !_kortestz_mask16_u8(m, m); }
#else
  V<N> s{};
  void add(V<N> a, V<N> b) { s += a + b; }
  bool any() const {
    bool r = false;
    for (int l = 0; l < N; ++l) r = r || s[l] != s[l];
    return r;
  }
#endif
};

struct MaxOp {
  static constexpr bool kMax = true;
  static float ident() { return -__builtin_inff(); }
  template <class T>
  static T fast(T acc, T v) { return v > acc ? v : acc; }
  template <class T>
  static T exact(T acc, T v) { return (v > acc) | (v != v) ? v : acc; }
  static float one(float acc, float v) { return (v > acc || v != v) ? v : acc; }
};
struct AddOp {
  static constexpr bool kMax = false;
  static float ident() { return 0.f; }
  template <class T>
  static T fast(T acc, T v) { return acc + v; }
  template <class T>
  static T exact(T acc, T v) { return acc + v; }
  static float one(float acc, float v) { return acc + v; }
};

template <class Op, bool Exact, class T>
inline T comb(T acc, T v) {
  if constexpr (Exact) return Op::exact(acc, v);
  else return Op::fast(acc, v);
}

// What a block needs: the window rows (first row at column 0 of the plane
// row, pitch W, n rows, all real), the first window's column c0 (negative in
// the left padding) and the row width W.
struct BlockAt {
  const float* row;
  index_t c0, W, n;
};

// How a block's loads treat the row's ends: kInner, all its windows lie
// inside the row (every load stays inside the windows' columns); kBlend,
// whole-vector loads whose lanes outside the row become the identity;
// kMaskLoad, the same through lane-masked loads (next to the tensor's ends).
enum Edge { kInner, kBlend, kMaskLoad };

// N outputs (stride SW, KW taps, dilation 1) from the first window at
// column b.c0. Vertical then horizontal, in tap order, as pool_vmax_rows +
// pool_hmax do; columns outside [0, W) are the identity (the padding, as
// in their row buffer). NR > 0: n == NR rows (unrolled); 0: b.n. The fast
// max form feeds every input into *chk.
template <int N, int KW, int SW, class Op, bool Exact, int E, int NR>
CC_INLINE V<N> window_block(const BlockAt& b, NanCheck<N>* chk) {
  constexpr auto I = std::make_index_sequence<N>{};
  constexpr bool kCheck = Op::kMax && !Exact;
  const index_t n = NR > 0 ? NR : b.n;
  const float* p = b.row + b.c0;
  // The vector loads are at offsets 0, N (stride 2) or 0, 1, 2 (stride 1).
  VI<N> in_row[3] = {};
  if constexpr (E == kBlend)
    for (int k = 0; k < 3; ++k) in_row[k] = lanes_in<N>(b.c0 + (SW == 2 ? k * N : k), b.W);
  auto ld = [&](const float* q, index_t off) {
    if constexpr (E == kMaskLoad) {
      return ldv_cols<N>(q + off, b.c0 + off, b.W, Op::ident());
    } else if constexpr (E == kBlend) {
      return in_row[SW == 2 ? off / N : off] ? ldv<N>(q + off) : bcast<N>(Op::ident());
    } else {
      return ldv<N>(q + off);
    }
  };
  auto ld1 = [&](const float* q, index_t off) {  // one column, broadcast
    if constexpr (E != kInner) {
      const index_t c = b.c0 + off;
      return bcast<N>(c >= 0 && c < b.W ? q[off] : Op::ident());
    } else {
      return bcast<N>(q[off]);
    }
  };
  if constexpr (SW == 2) {
    V<N> x0 = ld(p, 0), x1 = ld(p, N), c{};
    if constexpr (KW == 3) c = ld1(p, 2 * N);
    if constexpr (kCheck) chk->add(x0, x1);
    if constexpr (kCheck && KW == 3) chk->add(c, c);
    for (index_t r = 1; r < n; ++r) {
      const float* q = p + r * b.W;
      const V<N> y0 = ld(q, 0), y1 = ld(q, N);
      if constexpr (kCheck) chk->add(y0, y1);
      x0 = comb<Op, Exact>(x0, y0);
      x1 = comb<Op, Exact>(x1, y1);
      if constexpr (KW == 3) {
        const V<N> c1 = ld1(q, 2 * N);
        if constexpr (kCheck) chk->add(c1, c1);
        c = comb<Op, Exact>(c, c1);
      }
    }
    const V<N> e = even_lanes<N>(x0, x1, I);
    V<N> res = comb<Op, Exact>(e, odd_lanes<N>(x0, x1, I));
    if constexpr (KW == 3) res = comb<Op, Exact>(res, shift_in<N>(e, c, I));
    return res;
  } else {
    V<N> t0 = ld(p, 0), t1 = ld(p, 1), t2{};
    if constexpr (KW == 3) t2 = ld(p, 2);
    if constexpr (kCheck) chk->add(t0, KW == 3 ? t2 : t1);
    for (index_t r = 1; r < n; ++r) {
      const float* q = p + r * b.W;
      const V<N> u0 = ld(q, 0), u1 = ld(q, 1);
      t0 = comb<Op, Exact>(t0, u0);
      t1 = comb<Op, Exact>(t1, u1);
      V<N> u2{};
      if constexpr (KW == 3) {
        u2 = ld(q, 2);
        t2 = comb<Op, Exact>(t2, u2);
      }
      if constexpr (kCheck) chk->add(u0, KW == 3 ? u2 : u1);
    }
    V<N> res = comb<Op, Exact>(t0, t1);
    if constexpr (KW == 3) res = comb<Op, Exact>(res, t2);
    return res;
  }
}

// One output row: the geometry of its windows.
struct RowAt {
  const float* row;  // first window row
  index_t W, n, pl;
  const float *x_begin, *x_end;  // the whole input
  float* y;
  float count;              // avg: the row factor of the divisor
  const float* col_count;   // avg: the column factors
  index_t div_lo, div_hi;   // avg: columns whose windows hold KW columns
};

// Block of N outputs at column o (E: how the loads treat the row's ends).
// Average pooling divides by count * col_count (0 -> 1, a window with no
// element).
template <int N, int KW, int SW, class Op, int E, int NR>
CC_INLINE void out_block(const RowAt& r, index_t o) {
  const BlockAt b{r.row, o * SW - r.pl, r.W, r.n};
  NanCheck<N> chk;
  V<N> v = window_block<N, KW, SW, Op, false, E, NR>(b, &chk);
  if constexpr (Op::kMax) {
    if (__builtin_expect(chk.any(), 0)) v = window_block<N, KW, SW, Op, true, E, NR>(b, &chk);
  } else if (E == kInner && o >= r.div_lo && o + N <= r.div_hi) {
    v = v / bcast<N>(r.count * float(KW));  // inner windows: KW columns
  } else {
    const V<N> d = bcast<N>(r.count) * ldv<N>(r.col_count + o);
    v = v / (d > 0.f ? d : bcast<N>(1.f));
  }
  stv<N>(r.y + o, v);
}

// Edge blocks out of line, so that the inner loop stays lean.
template <int N, int KW, int SW, class Op, int NR>
__attribute__((noinline)) void masked_block(const RowAt& r, index_t o) {
  const index_t c0 = o * SW - r.pl, span = SW == 2 ? 2 * N : N + KW - 1;
  if (r.row + c0 >= r.x_begin && r.row + (r.n - 1) * r.W + c0 + span <= r.x_end)
    out_block<N, KW, SW, Op, kBlend, NR>(r, o);
  else
    out_block<N, KW, SW, Op, kMaskLoad, NR>(r, o);
}

// Columns [lo, hi): blocks of N, the ragged end one more block overlapping
// the previous (outputs are pure functions of x); fewer than N columns:
// half-width blocks. Blocks outside [in_lo, in_hi) (the columns whose
// windows lie inside the row) load masked. Returns the first column not
// done (lo, or hi).
template <int N, int KW, int SW, class Op, int NR>
index_t vector_cols(const RowAt& r, index_t lo, index_t hi, index_t in_lo, index_t in_hi) {
  if (hi - lo < N) {
    if constexpr (N > 4) return vector_cols<N / 2, KW, SW, Op, NR>(r, lo, hi, in_lo, in_hi);
    else return lo;
  }
  auto masked = [&](index_t o) {
    masked_block<N, KW, SW, Op, NR>(r, o);
  };
  index_t o = lo;
  for (; o < in_lo && o + N <= hi; o += N) masked(o);
  for (; o + N <= std::min(hi, in_hi); o += N) out_block<N, KW, SW, Op, kInner, NR>(r, o);
  if (o < hi) {  // the ragged end: one overlapping block, masked if it must be
    if (hi - N >= in_lo && hi <= in_hi) {
      out_block<N, KW, SW, Op, kInner, NR>(r, hi - N);
    } else {
      for (; o + N < hi; o += N) masked(o);
      masked(hi - N);
    }
  }
  return hi;
}

// One column with bounds checks (rows narrower than 4 outputs). Padding
// columns are the identity, in tap order, as in the row-buffer kernels.
template <class Op>
float window_one(const float* xr, index_t W, index_t n, index_t ws, index_t kw) {
  float acc = Op::ident();
  for (index_t j = 0; j < kw; ++j) {
    const index_t c = ws + j;
    float v = Op::ident();
    if (c >= 0 && c < W) {
      v = xr[c];
      for (index_t r = 1; r < n; ++r) v = Op::one(v, xr[r * W + c]);
    }
    acc = j == 0 ? v : Op::one(acc, v);
  }
  return acc;
}

// ---- stride 1: vertical column vectors carried from block to block ----
//
// With stride 1, block o's windows cover columns [o - pl, o - pl + N + KW - 1):
// the vertical reduction of columns [c, c + N) and of the next N (which is
// the next block's first) give every tap by lane shifts, so each input is
// loaded once instead of KW times. Same arithmetic as the row buffer: the
// vertical value of each column, then the taps in order.

// Vertical reduction of columns [c, c + N) over the window rows; columns
// outside [0, W) are the identity. Fast max feeds the loads into *chk.
template <int N, class Op, bool Exact, int E, int NR>
CC_INLINE V<N> vcol(const RowAt& r, index_t c, NanCheck<N>* chk) {
  const index_t n = NR > 0 ? NR : r.n;
  const float* p = r.row + c;
  VI<N> in{};
  if constexpr (E == kBlend) in = lanes_in<N>(c, r.W);
  auto ld = [&](const float* q) {
    if constexpr (E == kMaskLoad) return ldv_cols<N>(q, c, r.W, Op::ident());
    else if constexpr (E == kBlend) return in ? ldv<N>(q) : bcast<N>(Op::ident());
    else return ldv<N>(q);
  };
  V<N> v = ld(p);
  if constexpr (Op::kMax && !Exact) chk->add(v, v);
  for (index_t i = 1; i < n; ++i) {
    const V<N> u = ld(p + i * r.W);
    if constexpr (Op::kMax && !Exact) chk->add(u, u);
    v = comb<Op, Exact>(v, u);
  }
  return v;
}

template <int N, class Op, int NR>
__attribute__((noinline)) V<N> vcol_edge(const RowAt& r, index_t c, NanCheck<N>* chk) {
  if (r.row + c >= r.x_begin && r.row + (r.n - 1) * r.W + c + N <= r.x_end)
    return vcol<N, Op, false, kBlend, NR>(r, c, chk);
  return vcol<N, Op, false, kMaskLoad, NR>(r, c, chk);
}

template <int N, class Op, int NR>
CC_INLINE V<N> vcol_any(const RowAt& r, index_t c, NanCheck<N>* chk) {
  if (c >= 0 && c + N <= r.W) return vcol<N, Op, false, kInner, NR>(r, c, chk);
  return vcol_edge<N, Op, NR>(r, c, chk);
}

// Columns [lo, hi) of a stride-1 row, hi - lo >= 2N: blocks of N carrying the
// next block's vertical vector; a block with a NaN among its inputs (or the
// carried vector's) is redone by out_block, and so is the ragged end.
template <int N, int KW, class Op, int NR>
void stride1_cols(const RowAt& r, index_t lo, index_t hi, index_t in_lo, index_t in_hi) {
  constexpr auto I = std::make_index_sequence<N>{};
  NanCheck<N> chk;
  V<N> cur = vcol_any<N, Op, NR>(r, lo - r.pl, &chk);
  bool cur_nan = chk.any();
  index_t o = lo;
  for (; o + N <= hi; o += N) {
    NanCheck<N> nchk;
    const V<N> next = vcol_any<N, Op, NR>(r, o + N - r.pl, &nchk);
    const bool next_nan = nchk.any();
    if (__builtin_expect(cur_nan || next_nan, 0)) {
      out_block<N, KW, 1, Op, kMaskLoad, NR>(r, o);  // exact, any position
    } else {
      const V<N> s1 = shift_in<N>(cur, next, I);
      V<N> v = comb<Op, false>(cur, s1);
      if constexpr (KW == 3) v = comb<Op, false>(v, shift2_in<N>(cur, next, I));
      if constexpr (!Op::kMax) {
        if (o >= r.div_lo && o + N <= r.div_hi) {
          v = v / bcast<N>(r.count * float(KW));
        } else {
          const V<N> d = bcast<N>(r.count) * ldv<N>(r.col_count + o);
          v = v / (d > 0.f ? d : bcast<N>(1.f));
        }
      }
      stv<N>(r.y + o, v);
    }
    cur = next;
    cur_nan = next_nan;
  }
  if (o < hi) {
    if (hi - N >= in_lo && hi <= in_hi) out_block<N, KW, 1, Op, kInner, NR>(r, hi - N);
    else masked_block<N, KW, 1, Op, NR>(r, hi - N);
  }
}

template <int KW, int SW, class Op, int NR>
void row_out(const RowAt& r, index_t OW, index_t in_lo, index_t in_hi) {
  if constexpr (SW == 1) {
    if (OW >= 2 * kVW) return stride1_cols<kVW, KW, Op, NR>(r, 0, OW, in_lo, in_hi);
  }
  // Rows narrower than 4 outputs: scalar.
  for (index_t ow = vector_cols<kVW, KW, SW, Op, NR>(r, 0, OW, in_lo, in_hi); ow < OW; ++ow) {
    float v = window_one<Op>(r.row, r.W, r.n, ow * SW - r.pl, KW);
    if constexpr (!Op::kMax) {
      const float d = r.count * r.col_count[ow];
      v = v / (d > 0.f ? d : 1.f);
    }
    r.y[ow] = v;
  }
}

// Small stride-1 planes with padding are first copied into a buffer with the
// padding written out (the identity), so that every block is an inner one:
// there the two edge blocks of each row cost more than the copy (15% on a
// 35x35 Inception map). With stride 2 the copy (4 inputs per output) costs
// more than the one edge block per row it saves (40% slower on 56x56 p1).
constexpr index_t kPadCopyMaxFloats = 64 * 64;

template <int KW, int SW, class Op>
void fwd_planes(const PoolFwdArgs& a, index_t nc0, index_t nc1) {
  const index_t H = a.H, W = a.W, OH = a.OH, OW = a.OW, pl = a.pl;
  // Inner columns [in_lo, in_hi): windows entirely inside [0, W).
  const index_t in_lo = std::min(OW, (pl + SW - 1) / SW);
  const index_t last = W - KW + pl;  // largest inner window start (padded coords)
  const index_t in_hi = last < 0 ? in_lo : std::max(in_lo, std::min(OW, last / SW + 1));
  const float* x_end = a.x + a.planes * H * W;
  // The padded copy: rows of Wp floats, [pl identity][W values][identity],
  // wide enough for every window and a vector of slack (stride-1 blocks read
  // one vector past their windows).
  const bool pad_copy = SW == 1 && (in_lo > 0 || in_hi < OW) && H * W <= kPadCopyMaxFloats;
  const index_t Wp = std::max(pl + W, (OW - 1) * SW + KW) + kVW;
  std::vector<float> buf(pad_copy ? size_t(H * Wp) : 0, Op::ident());
  for (index_t nc = nc0; nc < nc1; ++nc) {
    const float* xp = a.x + nc * H * W;
    float* yp = a.y + nc * OH * OW;
    if (pad_copy)  // (the identity columns were written once)
      for (index_t ih = 0; ih < H; ++ih)
        std::memcpy(buf.data() + ih * Wp + pl, xp + ih * W, size_t(W) * sizeof(float));
    for (index_t oh = 0; oh < OH; ++oh) {
      const PoolRowTaps& t = a.rows[oh];
      float* yr = yp + oh * OW;
      if (t.n <= 0) {
        for (index_t ow = 0; ow < OW; ++ow) yr[ow] = Op::ident();
        continue;
      }
      RowAt r{xp + t.ih0 * W, W, t.n, pl, a.x, x_end, yr, t.count, a.col_count, in_lo, in_hi};
      index_t lo = in_lo, hi = in_hi;
      if (pad_copy) {
        r.row = buf.data() + t.ih0 * Wp;
        r.W = Wp;
        r.pl = 0;
        r.x_begin = buf.data();
        r.x_end = buf.data() + buf.size();
        lo = 0;
        hi = OW;
      }
      if (t.n == 3) row_out<KW, SW, Op, 3>(r, OW, lo, hi);
      else if (t.n == 2) row_out<KW, SW, Op, 2>(r, OW, lo, hi);
      else row_out<KW, SW, Op, 0>(r, OW, lo, hi);
    }
  }
}

template <class Op>
void fwd_planes_op(const PoolFwdArgs& a, index_t nc0, index_t nc1) {
  if (a.sw == 2) {
    if (a.kw == 2) return fwd_planes<2, 2, Op>(a, nc0, nc1);
    return fwd_planes<3, 2, Op>(a, nc0, nc1);
  }
  if (a.kw == 2) return fwd_planes<2, 1, Op>(a, nc0, nc1);
  return fwd_planes<3, 1, Op>(a, nc0, nc1);
}

}  // namespace

void pool_fwd_planes(const PoolFwdArgs& a, index_t nc0, index_t nc1) {
  if (a.is_max) fwd_planes_op<MaxOp>(a, nc0, nc1);
  else fwd_planes_op<AddOp>(a, nc0, nc1);
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
