// Products with a few rows (M <= kGemvMaxM): a batch-1 classifier head is
// 1 x 2048 by 2048 x 1000. The packed SGEMM copies all of B into panels for
// one row of A (measured 416 us for 1 x 1280 by 1280 x 1000, numpy's GEMV
// 37 us); here B is streamed once, in place: dot products along k when B is
// stored N x K (transB, the usual Gemm head), rows of B scaled and added when
// it is stored K x N. op(A) comes in row-major (gemm() gathers a transposed A).
#include <algorithm>

#include "convcore/cpu/kernels/simd.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

inline float hsum(vf v) {
  float s = 0.f;
  for (int i = 0; i < kVW; ++i) s += v[i];
  return s;
}

inline float finish(const GemmArgs& g, index_t m, index_t n, float acc) {
  float r = g.alpha * acc;
  if (g.beta != 0.f) r += g.beta * g.C[m * g.ldc + n];
  if (g.ep.bias) r += g.ep.bias[m];
  if (g.ep.clamp()) r = std::min(std::max(r, g.ep.lo), g.ep.hi);
  return r;
}

// B stored N x K: C[m][n] = dot(A[m], B[n]), four columns at a time with the
// sums of every row in registers (M is a template argument so that they stay
// there), so B is read once whatever M.
template <int M>
void gemv_rows_of_b(const GemmArgs& g, index_t n0, index_t n1) {
  const index_t K = g.K, kv = K / kVW * kVW;
  index_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const float* b[4] = {g.B + n * g.ldb, g.B + (n + 1) * g.ldb, g.B + (n + 2) * g.ldb,
                         g.B + (n + 3) * g.ldb};
    vf s[M][4] = {};
    for (index_t k = 0; k < kv; k += kVW) {
      const vf b0 = load(b[0] + k), b1 = load(b[1] + k), b2 = load(b[2] + k), b3 = load(b[3] + k);
#pragma GCC unroll 4
      for (int m = 0; m < M; ++m) {
        const vf av = load(g.A + m * g.lda + k);
        s[m][0] += av * b0;
        s[m][1] += av * b1;
        s[m][2] += av * b2;
        s[m][3] += av * b3;
      }
    }
    for (int m = 0; m < M; ++m) {
      const float* a = g.A + m * g.lda;
      for (int j = 0; j < 4; ++j) {
        float t = hsum(s[m][j]);
        for (index_t k = kv; k < K; ++k) t += a[k] * b[j][k];
        g.C[m * g.ldc + n + j] = finish(g, m, n + j, t);
      }
    }
  }
  for (; n < n1; ++n) {
    const float* b = g.B + n * g.ldb;
    for (int m = 0; m < M; ++m) {
      const float* a = g.A + m * g.lda;
      vf s1{};
      for (index_t k = 0; k < kv; k += kVW) s1 += load(a + k) * load(b + k);
      float t = hsum(s1);
      for (index_t k = kv; k < K; ++k) t += a[k] * b[k];
      g.C[m * g.ldc + n] = finish(g, m, n, t);
    }
  }
}

// B stored K x N: C[m][n0:n1] = sum_k A[m][k] * B[k][n0:n1], a strip of
// columns at a time with the accumulators of every row in registers.
void gemv_cols_of_b(const GemmArgs& g, index_t n0, index_t n1) {
  constexpr int kStrip = 4;  // vectors per strip
  index_t n = n0;
  for (; n + kStrip * kVW <= n1; n += kStrip * kVW) {
    vf acc[kGemvMaxM][kStrip] = {};
    for (index_t k = 0; k < g.K; ++k) {
      const float* b = g.B + k * g.ldb + n;
      vf bv[kStrip];
      for (int j = 0; j < kStrip; ++j) bv[j] = load(b + j * kVW);
      for (index_t m = 0; m < g.M; ++m) {
        const vf a = splat(g.A[m * g.lda + k]);
        for (int j = 0; j < kStrip; ++j) acc[m][j] += a * bv[j];
      }
    }
    for (index_t m = 0; m < g.M; ++m)
      for (int j = 0; j < kStrip; ++j)
        for (int l = 0; l < kVW; ++l) {
          const index_t c = n + j * kVW + l;
          g.C[m * g.ldc + c] = finish(g, m, c, acc[m][j][l]);
        }
  }
  for (; n < n1; ++n)  // the last columns, one at a time
    for (index_t m = 0; m < g.M; ++m) {
      float t = 0.f;
      for (index_t k = 0; k < g.K; ++k) t += g.A[m * g.lda + k] * g.B[k * g.ldb + n];
      g.C[m * g.ldc + n] = finish(g, m, n, t);
    }
}

}  // namespace

void sgemv(const GemmArgs& g, index_t n0, index_t n1) {
  static_assert(kGemvMaxM == 4, "one instantiation per row count");
  if (!g.trans_b) return gemv_cols_of_b(g, n0, n1);
  switch (g.M) {
    case 1: return gemv_rows_of_b<1>(g, n0, n1);
    case 2: return gemv_rows_of_b<2>(g, n0, n1);
    case 3: return gemv_rows_of_b<3>(g, n0, n1);
    default: return gemv_rows_of_b<4>(g, n0, n1);
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
