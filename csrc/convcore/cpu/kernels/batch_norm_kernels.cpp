// Batch-norm loops (one copy per ISA). Sums of float32 data are kept in
// float64 vectors of half the float width: each float vector is split into
// two halves, widened, and added to its own accumulator, so the summation
// order is fixed by the ISA alone.
#include "convcore/cpu/kernels/batch_norm_kernels.h"

#include "convcore/cpu/kernels/simd.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

constexpr int kHW = kVW / 2;  // doubles per vector (and floats per half vector)
typedef double vd __attribute__((vector_size(kHW * sizeof(double))));
typedef float vh __attribute__((vector_size(kHW * sizeof(float)), aligned(4)));

inline vd widen(const float* p) { return __builtin_convertvector(*reinterpret_cast<const vh*>(p), vd); }
inline double hsum(vd v) {
  double s = 0;
  for (int l = 0; l < kHW; ++l) s += v[l];
  return s;
}
// With a fused ReLU, g is zeroed where its output y <= 0 (y is never
// subnormal: the kernels run with flush-to-zero).

double bn_sum(index_t n, const float* x) {
  vd a0 = vd{}, a1 = vd{};
  index_t i = 0;
  for (; i + kVW <= n; i += kVW) {
    a0 += widen(x + i);
    a1 += widen(x + i + kHW);
  }
  double s = hsum(a0 + a1);
  for (; i < n; ++i) s += double(x[i]);
  return s;
}

double bn_sumsq_dev(index_t n, const float* x, double mean) {
  vd a0 = vd{}, a1 = vd{};
  const vd m = vd{} + mean;
  index_t i = 0;
  for (; i + kVW <= n; i += kVW) {
    const vd d0 = widen(x + i) - m, d1 = widen(x + i + kHW) - m;
    a0 += d0 * d0;
    a1 += d1 * d1;
  }
  double s = hsum(a0 + a1);
  for (; i < n; ++i) {
    const double d = double(x[i]) - mean;
    s += d * d;
  }
  return s;
}

template <bool kMask>
void grad_sums_t(index_t n, const float* g, const float* x, const float* y, double mean,
                 double* gsum, double* gdot) {
  vd s0 = vd{}, s1 = vd{}, d0 = vd{}, d1 = vd{};
  const vd m = vd{} + mean;
  index_t i = 0;
  for (; i + kVW <= n; i += kVW) {
    vd g0 = widen(g + i), g1 = widen(g + i + kHW);
    if (kMask) {
      g0 = widen(y + i) <= vd{} ? vd{} : g0;
      g1 = widen(y + i + kHW) <= vd{} ? vd{} : g1;
    }
    s0 += g0;
    s1 += g1;
    d0 += g0 * (widen(x + i) - m);
    d1 += g1 * (widen(x + i + kHW) - m);
  }
  double s = hsum(s0 + s1), d = hsum(d0 + d1);
  for (; i < n; ++i) {
    const double gi = kMask && y[i] <= 0.f ? 0.0 : double(g[i]);
    s += gi;
    d += gi * (double(x[i]) - mean);
  }
  *gsum += s;
  *gdot += d;
}

void bn_grad_sums(index_t n, const float* g, const float* x, const float* y, double mean,
                  double* gsum, double* gdot) {
  if (y) grad_sums_t<true>(n, g, x, y, mean, gsum, gdot);
  else grad_sums_t<false>(n, g, x, y, mean, gsum, gdot);
}

void bn_affine(index_t n, const float* x, float a, float b, bool relu, float* y) {
  const vf va = splat(a), vb = splat(b), zero = vf{};
  index_t i = 0;
  if (relu) {
    for (; i + kVW <= n; i += kVW) store(y + i, vmax(load(x + i) * va + vb, zero));
    for (; i < n; ++i) {
      const float v = x[i] * a + b;
      y[i] = v < 0.f ? 0.f : v;
    }
  } else {
    for (; i + kVW <= n; i += kVW) store(y + i, load(x + i) * va + vb);
    for (; i < n; ++i) y[i] = x[i] * a + b;
  }
}

template <bool kMask, bool kCentre>
void grad_input_t(index_t n, const float* g, const float* x, const float* y, float mean, float k,
                  float gmean, float s, float* gx) {
  const vf vs = splat(s), vm = splat(mean), vk = splat(k), vg = splat(gmean), zero = vf{};
  index_t i = 0;
  for (; i + kVW <= n; i += kVW) {
    vf gi = load(g + i);
    if (kMask) gi = load(y + i) <= zero ? zero : gi;
    if (kCentre) gi = gi - vg - (load(x + i) - vm) * vk;
    store(gx + i, gi * vs);
  }
  for (; i < n; ++i) {
    float gi = kMask && y[i] <= 0.f ? 0.f : g[i];
    if (kCentre) gi = gi - gmean - (x[i] - mean) * k;
    gx[i] = gi * s;
  }
}

void bn_grad_input(index_t n, const float* g, const float* x, const float* y, float mean, float k,
                   float gmean, float s, float* gx) {
  if (y && x) grad_input_t<true, true>(n, g, x, y, mean, k, gmean, s, gx);
  else if (y) grad_input_t<true, false>(n, g, x, y, mean, k, gmean, s, gx);
  else if (x) grad_input_t<false, true>(n, g, x, y, mean, k, gmean, s, gx);
  else grad_input_t<false, false>(n, g, x, y, mean, k, gmean, s, gx);
}

}  // namespace

void fill_batch_norm_kernels(BatchNormKernels& t) {
  t.sum = &bn_sum;
  t.sumsq_dev = &bn_sumsq_dev;
  t.grad_sums = &bn_grad_sums;
  t.affine = &bn_affine;
  t.grad_input = &bn_grad_input;
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
