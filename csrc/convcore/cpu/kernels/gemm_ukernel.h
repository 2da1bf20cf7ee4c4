// The register-blocked SGEMM micro-kernel (MR rows x NV vectors) and the
// block loop around it, shared by sgemm() and the convolution drivers.
#pragma once
#include <algorithm>

#include "convcore/cpu/kernels/vec.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

// Register tile per ISA: MR rows of A broadcast, NV vectors of B.
// AVX-512 (32 zmm): 8x32 leaves room and keeps M=8k layers exact; AVX2 (16
// ymm): 6x16 is the classic 12-accumulator tile; SSE2: 6x8.
#if defined(CONVCORE_ISA_avx512)
constexpr int kMR = 8, kNV = 2;
#elif defined(CONVCORE_ISA_avx2)
constexpr int kMR = 6, kNV = 2;
#else
constexpr int kMR = 6, kNV = 2;
#endif
constexpr int kNR = kNV * kVW;

template <int MR, int NV>
inline void store_tile(const V (&acc)[MR][NV], float* C, index_t ldc, const float* R,
                       index_t ldr, const GemmTileOut& o) {
  const V alpha = vset1(o.alpha), beta = vset1(o.beta), lo = vset1(o.lo), hi = vset1(o.hi);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const V bias = vset1(o.final && o.bias ? o.bias[i] : 0.f);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* p = C + i * ldc + v * kVW;
      V r = acc[i][v];
      if (o.alpha != 1.f) r = vmul(r, alpha);
      if (o.beta != 0.f) r = vfma(beta, vload(p), r);
      if (o.final) {
        if (o.bias) r = vadd(r, bias);
        if (R) r = vadd(r, vload(R + i * ldr + v * kVW));
        if (o.clamp) r = vminv(vmaxv(r, lo), hi);
      }
      vstore(p, r);
    }
  }
}

// C[mr x nr] (op)= Ap[kc][MR] * Bp[kc][NR]; mr <= MR, nr <= NR.
template <int MR, int NV>
inline void micro_kernel(index_t kc, const float* __restrict Ap, const float* __restrict Bp,
                         float* C, index_t ldc, index_t mr, index_t nr, const GemmTileOut& o) {
  constexpr int NR = NV * kVW;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = vzero();

#pragma GCC unroll 2
  for (index_t k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = vloada(Bp + v * kVW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = vbcast(Ap + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = vfma(a, b[v], acc[i][v]);
    }
    Ap += MR;
    Bp += NR;
  }

  const float* R = o.final ? o.residual : nullptr;
  if (mr == MR && nr == NR) {
    store_tile<MR, NV>(acc, C, ldc, R, o.ldr, o);
    return;
  }
  // Edge tile: go through a full-size buffer so the store code stays one.
  alignas(64) float tc[MR * NR];
  alignas(64) float tr[MR * NR];
  for (index_t i = 0; i < mr; ++i)
    for (index_t j = 0; j < nr; ++j) {
      tc[i * NR + j] = o.beta != 0.f ? C[i * ldc + j] : 0.f;
      if (R) tr[i * NR + j] = R[i * o.ldr + j];
    }
  // The bias has only mr rows left: pad it too, so no row past M is read.
  alignas(64) float tb[MR] = {};
  GemmTileOut oe = o;
  if (o.final && o.bias) {
    for (index_t i = 0; i < mr; ++i) tb[i] = o.bias[i];
    oe.bias = tb;
  }
  store_tile<MR, NV>(acc, tc, NR, R ? tr : nullptr, NR, oe);
  for (index_t i = 0; i < mr; ++i)
    for (index_t j = 0; j < nr; ++j) C[i * ldc + j] = tc[i * NR + j];
}

// All MR x NR tiles of an mc x nc block; the B micro-panel stays in L1 while
// the A panels stream from L2.
template <int MR, int NV>
void gemm_block_t(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                  float* C, index_t ldc, const GemmTileOut& out) {
  constexpr int NR = NV * kVW;
  for (index_t jr = 0; jr < nc; jr += NR) {
    const index_t nr = std::min<index_t>(NR, nc - jr);
    for (index_t ir = 0; ir < mc; ir += MR) {
      GemmTileOut o = out;
      if (o.bias) o.bias += ir;
      if (o.residual) o.residual += ir * o.ldr + jr;
      micro_kernel<MR, NV>(kc, Ap + ir * kc, Bp + jr * kc, C + ir * ldc + jr, ldc,
                           std::min<index_t>(MR, mc - ir), nr, o);
    }
  }
}

void gemm_block(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp, float* C,
                index_t ldc, const GemmTileOut& out);
void gemm_pack_a(const float* A, index_t lda, bool trans, index_t i0, index_t mc, index_t p0,
                 index_t kc, float* Ap);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
