// Packed, cache-blocked SGEMM (Goto/BLIS structure) with a register-blocked
// MR x NR micro-kernel. Compiled once per ISA: NR is two vectors wide.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "convcore/cpu/kernels/simd.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

constexpr int MR = kGemmMR;
constexpr int NV = 2;
constexpr int NR = NV * kVW;
constexpr index_t KC = 256;
constexpr index_t MC = MR * 24;
constexpr index_t NC = NR * 128;

struct AlignedFree { void operator()(float* p) const { std::free(p); } };

// Per-thread packing buffers, grown on demand and kept for the next call.
float* scratch(int slot, index_t n) {
  thread_local std::unique_ptr<float, AlignedFree> buf[2];
  thread_local index_t cap[2] = {0, 0};
  if (cap[slot] < n) {
    const index_t bytes = ((n * index_t(sizeof(float)) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, size_t(bytes)));
    if (!p) throw std::bad_alloc();
    buf[slot].reset(p);
    cap[slot] = n;
  }
  return buf[slot].get();
}

inline float elem(const float* X, index_t ld, bool trans, index_t r, index_t c) {
  return trans ? X[c * ld + r] : X[r * ld + c];
}

// A block (mc x kc) -> panels of MR rows, k-major: Ap[p][k][MR].
void pack_a(const GemmArgs& g, index_t i0, index_t mc, index_t p0, index_t kc, float* Ap) {
  for (index_t ip = 0; ip < mc; ip += MR) {
    const index_t mr = std::min<index_t>(MR, mc - ip);
    float* dst = Ap + ip * kc;
    if (!g.trans_a && mr == MR) {
      const float* src = g.A + (i0 + ip) * g.lda + p0;
      for (index_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i * g.lda + k];
    } else {
      for (index_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i)
          dst[k * MR + i] = i < mr ? elem(g.A, g.lda, g.trans_a, i0 + ip + i, p0 + k) : 0.f;
    }
  }
}

// B block (kc x nc) -> panels of NR columns, k-major: Bp[p][k][NR].
void pack_b(const GemmArgs& g, index_t p0, index_t kc, index_t j0, index_t nc, float* Bp) {
  for (index_t jp = 0; jp < nc; jp += NR) {
    const index_t nr = std::min<index_t>(NR, nc - jp);
    float* dst = Bp + jp * kc;
    if (!g.trans_b && nr == NR) {
      const float* src = g.B + p0 * g.ldb + j0 + jp;
      for (index_t k = 0; k < kc; ++k)
        for (int v = 0; v < NV; ++v) store(dst + k * NR + v * kVW, load(src + k * g.ldb + v * kVW));
    } else {
      for (index_t k = 0; k < kc; ++k)
        for (int j = 0; j < NR; ++j)
          dst[k * NR + j] = j < nr ? elem(g.B, g.ldb, g.trans_b, p0 + k, j0 + jp + j) : 0.f;
    }
  }
}

struct Store {
  float alpha, beta;
  const float* bias;  // MR values (already offset) or null
  bool clamp;
  float lo, hi;
};

// acc (MR x NR in registers) -> C, applying alpha/beta and, on the last K
// block, bias and clamp.
inline void micro_kernel(index_t kc, const float* __restrict Ap, const float* __restrict Bp,
                         float* C, index_t ldc, index_t mr, index_t nr, const Store& s) {
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = vf{};

  for (index_t k = 0; k < kc; ++k) {
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = *reinterpret_cast<const vf*>(Bp + k * NR + v * kVW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const vf a = splat(Ap[k * MR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] += a * b[v];
    }
  }

  const bool full = mr == MR && nr == NR;
  alignas(64) float tmp[MR * NR];
  float* dst = full ? C : tmp;
  const index_t ld = full ? ldc : NR;
  if (!full && s.beta != 0.f)
    for (index_t i = 0; i < mr; ++i)
      for (index_t j = 0; j < nr; ++j) tmp[i * NR + j] = C[i * ldc + j];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const vf bias = splat(s.bias && i < mr ? s.bias[i] : 0.f);  // rows past M: no bias read
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = dst + i * ld + v * kVW;
      vf r = acc[i][v];
      if (s.alpha != 1.f) r *= s.alpha;
      if (s.beta != 0.f) r += s.beta * load(p);
      r += bias;
      if (s.clamp) r = vmin(vmax(r, splat(s.lo)), splat(s.hi));
      store(p, r);
    }
  }
  if (!full)
    for (index_t i = 0; i < mr; ++i)
      for (index_t j = 0; j < nr; ++j) C[i * ldc + j] = tmp[i * NR + j];
}

}  // namespace

void sgemm(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) {  // C = beta*C, then epilogue
    for (index_t i = 0; i < g.M; ++i)
      for (index_t j = 0; j < g.N; ++j) {
        float r = g.beta == 0.f ? 0.f : g.beta * g.C[i * g.ldc + j];
        if (g.ep.bias) r += g.ep.bias[i];
        if (g.ep.clamp()) r = std::min(std::max(r, g.ep.lo), g.ep.hi);
        g.C[i * g.ldc + j] = r;
      }
    return;
  }
  float* Bp = scratch(0, KC * ((std::min(NC, g.N) + NR - 1) / NR * NR));
  float* Ap = scratch(1, KC * ((std::min(MC, g.M) + MR - 1) / MR * MR));
  for (index_t j0 = 0; j0 < g.N; j0 += NC) {
    const index_t nc = std::min(NC, g.N - j0);
    for (index_t p0 = 0; p0 < g.K; p0 += KC) {
      const index_t kc = std::min(KC, g.K - p0);
      const bool first = p0 == 0, last = p0 + kc == g.K;
      pack_b(g, p0, kc, j0, nc, Bp);
      for (index_t i0 = 0; i0 < g.M; i0 += MC) {
        const index_t mc = std::min(MC, g.M - i0);
        pack_a(g, i0, mc, p0, kc, Ap);
        for (index_t jr = 0; jr < nc; jr += NR) {
          for (index_t ir = 0; ir < mc; ir += MR) {
            Store s;
            s.alpha = g.alpha;
            s.beta = first ? g.beta : 1.f;
            s.bias = last && g.ep.bias ? g.ep.bias + i0 + ir : nullptr;
            s.clamp = last && g.ep.clamp();
            s.lo = g.ep.lo;
            s.hi = g.ep.hi;
            micro_kernel(kc, Ap + ir * kc, Bp + jr * kc, g.C + (i0 + ir) * g.ldc + j0 + jr, g.ldc,
                         std::min<index_t>(MR, mc - ir), std::min<index_t>(NR, nc - jr), s);
          }
        }
      }
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
