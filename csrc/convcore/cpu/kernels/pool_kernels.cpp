// Pooling row kernels (one copy per ISA). Pooling runs as a vertical pass
// (elementwise over the window's input rows, contiguous) into a padded row,
// then a horizontal pass along the row; stride 1 and 2 are vectorised
// (stride 2 by de-interleaving two vectors into even/odd lanes).
#include "convcore/cpu/kernels/backward_table.h"

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

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
