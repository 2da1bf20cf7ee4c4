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

// Rows i >= mr (an edge tile going through a buffer) get no bias: the bias
// vector has only the block's rows.
template <int MR, int NV>
inline void store_tile(const V (&acc)[MR][NV], float* C, index_t ldc, const float* R,
                       index_t ldr, const GemmTileOut& o, index_t mr = MR) {
  const V alpha = vset1(o.alpha), beta = vset1(o.beta), lo = vset1(o.lo), hi = vset1(o.hi);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const V bias = vset1(o.final && o.bias && i < mr ? o.bias[i] : 0.f);
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

// Where the micro-kernel reads row k of its B panel (NR floats, NV vectors).
// Packed: consecutive aligned NR-float rows (gemm_pack / conv_pack_b).
struct PackedB {
  const float* p;
  template <int NR>
  const float* row(index_t k) const { return p + k * NR; }
  static V load(const float* r) { return vloada(r); }
};
// Shifted: row k starts at base + offs[k], any alignment (the shifted-GEMM
// convolution reads its B rows straight from a zero-padded input).
struct ShiftedB {
  const float* base;
  const index_t* offs;
  template <int NR>
  const float* row(index_t k) const { return base + offs[k]; }
  static V load(const float* r) { return vload(r); }
};
// As ShiftedB, and each row's next NR columns are prefetched: the first
// row panel of a block pulls B from memory as hundreds of row streams (one
// per k), too many for the hardware prefetchers to follow.
struct ShiftedBPrefetch : ShiftedB {
  template <int NR>
  const float* row(index_t k) const {
    const float* r = base + offs[k];
    __builtin_prefetch(r + NR);
    __builtin_prefetch(r + NR + 16);
    return r;
  }
};

// As PackedB, and row k of the next panel (`next`, NR floats per row) is
// prefetched: weights read once per call come from L3 or memory, where
// the prefetchers start too late on each new panel.
struct PackedBPrefetch : PackedB {
  const float* next;
  template <int NR>
  const float* row(index_t k) const {
    const float* n = next + k * NR;
    __builtin_prefetch(n);
    if constexpr (NR * sizeof(float) > 64) __builtin_prefetch(n + 16);
    return p + k * NR;
  }
};
// acc = Ap[kc][MR] * B[kc][NR] (the register tile; inlined so acc stays in
// registers).
template <int MR, int NV, class BSrc>
__attribute__((always_inline)) inline void accumulate(index_t kc, const float* __restrict Ap,
                                                      BSrc B, V (&acc)[MR][NV]) {
  constexpr int NR = NV * kVW;
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = vzero();

#pragma GCC unroll 2
  for (index_t k = 0; k < kc; ++k) {
    const float* __restrict br = B.template row<NR>(k);
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = BSrc::load(br + v * kVW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = vbcast(Ap + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = vfma(a, b[v], acc[i][v]);
    }
    Ap += MR;
  }
}

// C[mr x nr] (op)= Ap[kc][MR] * B[kc][NR]; mr <= MR, nr <= NR.
template <int MR, int NV, class BSrc>
inline void micro_kernel_src(index_t kc, const float* __restrict Ap, BSrc B, float* C,
                             index_t ldc, index_t mr, index_t nr, const GemmTileOut& o) {
  constexpr int NR = NV * kVW;
  V acc[MR][NV];
  accumulate<MR, NV>(kc, Ap, B, acc);

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
  store_tile<MR, NV>(acc, tc, NR, R ? tr : nullptr, NR, o, mr);
  for (index_t i = 0; i < mr; ++i)
    for (index_t j = 0; j < nr; ++j) C[i * ldc + j] = tc[i * NR + j];
}

template <int MR, int NV>
inline void micro_kernel(index_t kc, const float* __restrict Ap, const float* __restrict Bp,
                         float* C, index_t ldc, index_t mr, index_t nr, const GemmTileOut& o) {
  micro_kernel_src<MR, NV>(kc, Ap, PackedB{Bp}, C, ldc, mr, nr, o);
}

// All MR x NR tiles of an mc x nc block, row panels outer: the A
// micro-panel stays in L1 while the B panels stream from L2, and each row
// panel of C (and of a residual) is written as MR sequential streams the
// prefetchers follow (column-outer order touches every row of the block per
// panel: measured up to 1.3x slower on wide layers with a residual).
template <int MR, int NV>
void gemm_block_t(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                  float* C, index_t ldc, const GemmTileOut& out) {
  constexpr int NR = NV * kVW;
  for (index_t ir = 0; ir < mc; ir += MR) {
    GemmTileOut o = out;
    if (o.bias) o.bias += ir;
    const float* R = o.residual ? o.residual + ir * o.ldr : nullptr;
    const index_t mr = std::min<index_t>(MR, mc - ir);
    for (index_t jr = 0; jr < nc; jr += NR) {
      if (R) o.residual = R + jr;
      micro_kernel<MR, NV>(kc, Ap + ir * kc, Bp + jr * kc, C + ir * ldc + jr, ldc, mr,
                           std::min<index_t>(NR, nc - jr), o);
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

#if defined(CONVCORE_ISA_avx512)
namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

// Narrow-column variant for small output planes (7x7, 14x14 at batch 1):
// 8-wide ymm columns, up to 24 rows from three consecutive 8-row A panels.
// Zen 4 runs ymm FMAs at the same FLOP rate as zmm ones, so a 49-column
// plane wastes 7 columns instead of 15.
constexpr int kNRSmall = 8;

template <int MT>
inline void micro_kernel_n8(index_t kc, const float* __restrict Ap, const float* __restrict Bp,
                            float* C, index_t ldc, index_t mr, index_t nr, const GemmTileOut& o) {
  static_assert(MT % kMR == 0, "rows come in whole A panels");
  constexpr int NP = MT / kMR;
  __m256 acc[MT];
#pragma GCC unroll 24
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  for (index_t k = 0; k < kc; ++k) {
    const __m256 b = _mm256_load_ps(Bp + k * kNRSmall);
#pragma GCC unroll 3
    for (int q = 0; q < NP; ++q)
#pragma GCC unroll 8
      for (int i = 0; i < kMR; ++i)
        acc[q * kMR + i] = _mm256_fmadd_ps(_mm256_broadcast_ss(Ap + q * kMR * kc + k * kMR + i), b,
                                           acc[q * kMR + i]);
  }
  alignas(32) float tc[MT * kNRSmall];
  alignas(32) float tr[MT * kNRSmall];
  const bool full = mr == MT && nr == kNRSmall;
  const float* R = o.final ? o.residual : nullptr;
  float* D = full ? C : tc;
  const index_t ld = full ? ldc : kNRSmall;
  const float* RR = R;
  index_t ldr = o.ldr;
  if (!full) {  // whole MT x 8 buffers, zero outside the live mr x nr part
    for (index_t i = 0; i < MT; ++i)
      for (index_t j = 0; j < kNRSmall; ++j) {
        const bool live = i < mr && j < nr;
        tc[i * kNRSmall + j] = live && o.beta != 0.f ? C[i * ldc + j] : 0.f;
        tr[i * kNRSmall + j] = live && R ? R[i * o.ldr + j] : 0.f;
      }
    RR = R ? tr : nullptr;
    ldr = kNRSmall;
  }
  const __m256 alpha = _mm256_set1_ps(o.alpha), beta = _mm256_set1_ps(o.beta);
  const __m256 lo = _mm256_set1_ps(o.lo), hi = _mm256_set1_ps(o.hi);
  // Compile-time row loop: acc[] must stay in registers (a runtime bound
  // makes GCC keep it in memory and store it on every k step).
#pragma GCC unroll 24
  for (int i = 0; i < MT; ++i) {
    float* p = D + i * ld;
    __m256 r = acc[i];
    if (o.alpha != 1.f) r = _mm256_mul_ps(r, alpha);
    if (o.beta != 0.f) r = _mm256_fmadd_ps(beta, _mm256_loadu_ps(p), r);
    if (o.final) {
      if (o.bias) r = _mm256_add_ps(r, _mm256_set1_ps(i < mr ? o.bias[i] : 0.f));
      if (RR) r = _mm256_add_ps(r, _mm256_loadu_ps(RR + i * ldr));
      if (o.clamp) r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
    }
    _mm256_storeu_ps(p, r);
  }
  if (!full)
    for (index_t i = 0; i < mr; ++i)
      for (index_t j = 0; j < nr; ++j) C[i * ldc + j] = tc[i * kNRSmall + j];
}

inline void gemm_block_n8(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                          float* C, index_t ldc, const GemmTileOut& out) {
  for (index_t jr = 0; jr < nc; jr += kNRSmall) {
    const index_t nr = std::min<index_t>(kNRSmall, nc - jr);
    for (index_t ir = 0; ir < mc;) {
      GemmTileOut o = out;
      if (o.bias) o.bias += ir;
      if (o.residual) o.residual += ir * o.ldr + jr;
      const index_t rows = mc - ir;
      const float* A = Ap + ir * kc;
      const float* B = Bp + jr * kc;
      float* Ct = C + ir * ldc + jr;
      if (rows > 2 * kMR) {
        micro_kernel_n8<3 * kMR>(kc, A, B, Ct, ldc, std::min<index_t>(rows, 3 * kMR), nr, o);
        ir += 3 * kMR;
      } else if (rows > kMR) {
        micro_kernel_n8<2 * kMR>(kc, A, B, Ct, ldc, rows, nr, o);
        ir += 2 * kMR;
      } else {
        micro_kernel_n8<kMR>(kc, A, B, Ct, ldc, rows, nr, o);
        ir += kMR;
      }
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
#endif
