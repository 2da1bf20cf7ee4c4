// Packed, cache-blocked SGEMM (Goto/BLIS structure) with a register-blocked
// MR x NR micro-kernel. Compiled once per ISA: NR is two vectors wide.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "convcore/cpu/kernels/simd.h"
#include "convcore/cpu/kernels/gemm_ukernel.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

constexpr int MR = kMR;
constexpr int NV = kNV;
constexpr int NR = kNR;
constexpr index_t KC = 256;
constexpr index_t MC = MR * 32;
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

// B block (kc x nc) -> panels of NRv = NVv vectors, k-major: Bp[p][k][NRv].
template <int NVv>
void pack_b(const GemmArgs& g, index_t p0, index_t kc, index_t j0, index_t nc, float* Bp) {
  constexpr int NRv = NVv * kVW;
  for (index_t jp = 0; jp < nc; jp += NRv) {
    const index_t nr = std::min<index_t>(NRv, nc - jp);
    float* dst = Bp + jp * kc;
    if (!g.trans_b && nr == NRv) {
      const float* src = g.B + p0 * g.ldb + j0 + jp;
      for (index_t k = 0; k < kc; ++k)
        for (int v = 0; v < NVv; ++v)
          vstore(dst + k * NRv + v * kVW, vload(src + k * g.ldb + v * kVW));
    } else if (g.trans_b) {
      // Each source row (one column of op(B)) is read contiguously.
      for (index_t j = 0; j < nr; ++j) {
        const float* src = g.B + (j0 + jp + j) * g.ldb + p0;
        for (index_t k = 0; k < kc; ++k) dst[k * NRv + j] = src[k];
      }
      for (index_t j = nr; j < NRv; ++j)
        for (index_t k = 0; k < kc; ++k) dst[k * NRv + j] = 0.f;
    } else {
      for (index_t k = 0; k < kc; ++k)
        for (int j = 0; j < NRv; ++j)
          dst[k * NRv + j] = j < nr ? g.B[(p0 + k) * g.ldb + j0 + jp + j] : 0.f;
    }
  }
}

}  // namespace

void gemm_pack_a(const float* A, index_t lda, bool trans, index_t i0, index_t mc, index_t p0,
                 index_t kc, float* Ap) {
  for (index_t ip = 0; ip < mc; ip += MR) {
    const index_t mr = std::min<index_t>(MR, mc - ip);
    float* dst = Ap + ip * kc;
    if (!trans && mr == MR) {
      const float* src = A + (i0 + ip) * lda + p0;
      for (index_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i * lda + k];
    } else if (trans && mr == MR) {
      const float* src = A + p0 * lda + i0 + ip;
      for (index_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[k * lda + i];
    } else {
      for (index_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i)
          dst[k * MR + i] = i < mr ? elem(A, lda, trans, i0 + ip + i, p0 + k) : 0.f;
    }
  }
}

void gemm_block(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp, float* C,
                index_t ldc, const GemmTileOut& out) {
  gemm_block_t<MR, NV>(kc, mc, nc, Ap, Bp, C, ldc, out);
}

template <int NVv>
void sgemm_nv(const GemmArgs& g) {
  constexpr int NRv = NVv * kVW;
  constexpr index_t NCv = NRv * 128;
  float* Bp = scratch(0, KC * ((std::min(NCv, g.N) + NRv - 1) / NRv * NRv));
  float* Ap = scratch(1, KC * ((std::min(MC, g.M) + MR - 1) / MR * MR));
  for (index_t j0 = 0; j0 < g.N; j0 += NCv) {
    const index_t nc = std::min(NCv, g.N - j0);
    for (index_t p0 = 0; p0 < g.K; p0 += KC) {
      const index_t kc = std::min(KC, g.K - p0);
      const bool first = p0 == 0, last = p0 + kc == g.K;
      pack_b<NVv>(g, p0, kc, j0, nc, Bp);
      for (index_t i0 = 0; i0 < g.M; i0 += MC) {
        const index_t mc = std::min(MC, g.M - i0);
        gemm_pack_a(g.A, g.lda, g.trans_a, i0, mc, p0, kc, Ap);
        GemmTileOut o;
        o.alpha = g.alpha;
        o.beta = first ? g.beta : 1.f;
        o.final = last;
        o.bias = g.ep.bias ? g.ep.bias + i0 : nullptr;
        o.clamp = g.ep.clamp();
        o.lo = g.ep.lo;
        o.hi = g.ep.hi;
        gemm_block_t<MR, NVv>(kc, mc, nc, Ap, Bp, g.C + i0 * g.ldc + j0, g.ldc, o);
      }
    }
  }
}

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
  // Narrow products (N no wider than one vector, e.g. grad_weight's
  // rows x out-channels) use a one-vector tile instead of padding B panels
  // to two vectors. Same summation order per element either way.
  if (NV > 1 && g.N <= kVW)
    sgemm_nv<1>(g);
  else
    sgemm_nv<NV>(g);
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
