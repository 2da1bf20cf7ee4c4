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

void pool_hmax(index_t OW, index_t sw, index_t kw, index_t dw, const float* row, float* y) {
  index_t ow = 0;
  if (sw == 1) {
    for (; ow + kVW <= OW; ow += kVW) {
      vf a = load(row + ow);
      for (index_t j = 1; j < kw; ++j) a = vmax_nan(a, load(row + ow + j * dw));
      store(y + ow, a);
    }
  } else if (sw == 2) {
    for (; ow + kVW <= OW; ow += kVW) {
      vf a = load_even(row + 2 * ow);
      for (index_t j = 1; j < kw; ++j) a = vmax_nan(a, load_even(row + 2 * ow + j * dw));
      store(y + ow, a);
    }
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
    for (; ow + kVW <= OW; ow += kVW) {
      vf a = load(row + ow);
      for (index_t j = 1; j < kw; ++j) a += load(row + ow + j);
      store(y + ow, a / load(div + ow));
    }
  } else if (sw == 2) {
    for (; ow + kVW <= OW; ow += kVW) {
      vf a = load_even(row + 2 * ow);
      for (index_t j = 1; j < kw; ++j) a += load_even(row + 2 * ow + j);
      store(y + ow, a / load(div + ow));
    }
  }
  for (; ow < OW; ++ow) {
    const float* r = row + ow * sw;
    float a = r[0];
    for (index_t j = 1; j < kw; ++j) a += r[j];
    y[ow] = a / div[ow];
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
