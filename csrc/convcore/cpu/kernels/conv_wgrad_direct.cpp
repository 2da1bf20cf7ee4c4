// Direct grad_weight micro-kernel (one copy per ISA); see conv_wgrad_direct.h.
// A kb x kr x kw block of vector accumulators stays in registers over whole
// planes: per vector of output columns, kb dY loads and kr*kw x loads feed
// kb*kr*kw FMAs. The lanes are summed (in lane order) by the caller.
#include "convcore/cpu/kernels/conv_wgrad_direct.h"

#include "convcore/cpu/kernels/simd.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

typedef int vi __attribute__((vector_size(kVW * sizeof(int))));

// Keeps v in a register: without it GCC folds the loads into the FMAs and
// re-reads every dY and x vector once per use, and the loop is load-bound.
#if defined(__GNUC__) && defined(CONVCORE_ISA_avx512)
#define CONVCORE_IN_REG(v) asm("" : "+v"(v))
#elif defined(__GNUC__) && !defined(CONVCORE_ISA_baseline)
#define CONVCORE_IN_REG(v) asm("" : "+x"(v))
#else
#define CONVCORE_IN_REG(v) (void)0
#endif

// Where tap kj sits in a row. kMode 1: kj floats in (stride 1, dilation 1),
// a constant offset in the load; kMode 2: stride 2, dilation 1, the taps
// alternate between the two phase rows (kj_off[1] is the phase row length),
// so one register holds it. Either way no pointer register per tap.
template <int kMode, int KW>
inline index_t tap(const index_t (&kj_off)[KW], int j) {
  if (kMode == 1) return j;
  if (kMode == 2) return ((j & 1) ? kj_off[1] : 0) + (j >> 1);
  return kj_off[j];
}

template <int KB, int KR, int KW, int kMode, bool kTail>
inline void step(vf (&acc)[KB][KR][KW], const float* const (&g)[KB], const float* xr,
                 const index_t (&ki_off)[KR], const index_t (&kj_off)[KW], vi live) {
  vf d[KB];
  for (int k = 0; k < KB; ++k) {
    d[k] = load(g[k]);
    CONVCORE_IN_REG(d[k]);
  }
  for (int i = 0; i < KR; ++i)
    for (int j = 0; j < KW; ++j) {
      vf xv = load(xr + ki_off[i] + tap<kMode>(kj_off, j));
      // Lanes past OW: dY is zero there, and x is zeroed too so that an
      // inf/NaN in a neighbouring column cannot leak in (0 * inf).
      if (kTail) xv = live ? xv : vf{};
      CONVCORE_IN_REG(xv);
      for (int k = 0; k < KB; ++k) acc[k][i][j] += d[k] * xv;
    }
}

// Two output rows at once when consecutive output rows move down by one
// kernel row (stride_h == dil_h): x rows r = 0..KR of the pair are loaded
// once and feed kernel row r of the first output row and r - 1 of the
// second (KR + 1 row loads instead of 2 * KR).
template <int KB, int KR, int KW, int kMode>
inline void step2(vf (&acc)[KB][KR][KW], const float* const (&g)[KB], index_t gpitch,
                  const float* xr, const index_t (&ki_off)[KR], const index_t (&kj_off)[KW]) {
  vf d0[KB], d1[KB];
  for (int k = 0; k < KB; ++k) {
    d0[k] = load(g[k]);
    d1[k] = load(g[k] + gpitch);
    CONVCORE_IN_REG(d0[k]);
    CONVCORE_IN_REG(d1[k]);
  }
#pragma GCC unroll 8
  for (int r = 0; r <= KR; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < KW; ++j) {
      vf xv = load(xr + (r < KR ? ki_off[r] : ki_off[KR - 1] + ki_off[1]) + tap<kMode>(kj_off, j));
      CONVCORE_IN_REG(xv);
      if (r < KR)
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) acc[k][r][j] += d0[k] * xv;
      if (r > 0)
#pragma GCC unroll 8
        for (int k = 0; k < KB; ++k) acc[k][r - 1][j] += d1[k] * xv;
    }
}

template <int KB, int KR, int KW, int kMode>
void run_block(const WgradDirectArgs& a) {
  vf acc[KB][KR][KW];
  float* const accp = a.acc;
  const index_t ks = a.acc_k_stride;
  for (int k = 0; k < KB; ++k)
    for (int i = 0; i < KR; ++i)
      for (int j = 0; j < KW; ++j) acc[k][i][j] = load(accp + k * ks + (i * KW + j) * kVW);
  index_t ki_off[KR], kj_off[KW];
  for (int i = 0; i < KR; ++i) ki_off[i] = a.ki_off[i];
  for (int j = 0; j < KW; ++j) kj_off[j] = a.kj_off[j];
  vi lane;
  for (int l = 0; l < kVW; ++l) lane[l] = l;
  const vi live = lane < (vi{} + int(a.tail));
  const index_t nvec = a.nvec, full = a.tail == kVW ? nvec : nvec - 1;
  const index_t rows = a.rows, gpitch = a.gy_pitch, xstep = a.x_row_step;
  for (index_t n = 0; n < a.images; ++n) {
    const float* g[KB];
    for (int k = 0; k < KB; ++k) g[k] = a.gy[k] + n * a.gy_image;
    const float* xr = a.x + n * a.x_image;
    index_t oh = 0;
    if (KR > 1 && a.pair_rows)
      for (; oh + 2 <= rows; oh += 2) {
        index_t v = 0;
        for (; v < full; ++v) {
          const float* gv[KB];
          for (int k = 0; k < KB; ++k) gv[k] = g[k] + v * kVW;
          step2<KB, KR, KW, kMode>(acc, gv, gpitch, xr + v * kVW, ki_off, kj_off);
        }
        for (int h = 0; h < 2 && v < nvec; ++h) {  // the partial last vector, row by row
          const float* gv[KB];
          for (int k = 0; k < KB; ++k) gv[k] = g[k] + h * gpitch + v * kVW;
          step<KB, KR, KW, kMode, true>(acc, gv, xr + h * xstep + v * kVW, ki_off, kj_off, live);
        }
        for (int k = 0; k < KB; ++k) g[k] += 2 * gpitch;
        xr += 2 * xstep;
      }
    for (; oh < rows; ++oh) {
      index_t v = 0;
      for (; v < full; ++v) {
        const float* gv[KB];
        for (int k = 0; k < KB; ++k) gv[k] = g[k] + v * kVW;
        step<KB, KR, KW, kMode, false>(acc, gv, xr + v * kVW, ki_off, kj_off, live);
      }
      if (v < nvec) {
        const float* gv[KB];
        for (int k = 0; k < KB; ++k) gv[k] = g[k] + v * kVW;
        step<KB, KR, KW, kMode, true>(acc, gv, xr + v * kVW, ki_off, kj_off, live);
      }
      for (int k = 0; k < KB; ++k) g[k] += gpitch;
      xr += xstep;
    }
  }
  for (int k = 0; k < KB; ++k)
    for (int i = 0; i < KR; ++i)
      for (int j = 0; j < KW; ++j) store(accp + k * ks + (i * KW + j) * kVW, acc[k][i][j]);
}

template <int KR, int KW, int kMode>
void run_kb(const WgradDirectArgs& a, int kb) {
  switch (kb) {
    case 1: run_block<1, KR, KW, kMode>(a); break;
    case 2: run_block<2, KR, KW, kMode>(a); break;
#if defined(CONVCORE_ISA_avx512)
    case 3: run_block<3, KR, KW, kMode>(a); break;
    default: run_block<4, KR, KW, kMode>(a); break;
#else
    default: run_block<3, KR, KW, kMode>(a); break;
#endif
  }
}

template <int kMode>
void run_t(const WgradDirectArgs& a, int kb, int kr, int kw) {
#if defined(CONVCORE_ISA_avx512)
  if (kw == 3 && kr == 3) {  // 2 x 3 x 3 = 18 accumulators
    if (kb == 1) run_block<1, 3, 3, kMode>(a);
    else run_block<2, 3, 3, kMode>(a);
    return;
  }
#endif
  (void)kr;
  if (kw == 5) run_kb<1, 5, kMode>(a, kb);
  else run_kb<1, 3, kMode>(a, kb);
}

void run(const WgradDirectArgs& a, int kb, int kr, int kw) {
  bool unit = true, phase2 = true;
  for (int j = 0; j < kw; ++j) {
    unit = unit && a.kj_off[j] == j;
    phase2 = phase2 && a.kj_off[j] == ((j & 1) ? a.kj_off[1] : 0) + (j >> 1);
  }
  if (unit) run_t<1>(a, kb, kr, kw);
  else if (phase2) run_t<2>(a, kb, kr, kw);
  else run_t<0>(a, kb, kr, kw);
}

}  // namespace

void fill_wgrad_direct(WgradDirectKernels& t) {
  t.simd_width = kVW;
  t.run = &run;
#if defined(CONVCORE_ISA_avx512)
  t.kb3 = 2; t.kr3 = 3;  // 18 accumulators + 2 dY + 1 x of 32 registers
  t.kb5 = 4; t.kr5 = 1;  // 20 + 4 + 1
#else
  t.kb3 = 3; t.kr3 = 1;  // 9 + 3 + 1 of 16 registers
  t.kb5 = 2; t.kr5 = 1;  // 10 + 2 + 1
#endif
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
