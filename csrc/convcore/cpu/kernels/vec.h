// Thin intrinsic wrappers, one set per ISA (SSE2, AVX2+FMA, AVX-512F). The
// GEMM micro-kernel uses these instead of the vector extensions of simd.h:
// GCC turns `vf{} + s` into an add plus a broadcast, while set1 from memory
// becomes one broadcast load (or an embedded {1to16} operand on AVX-512).
#pragma once
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "convcore/cpu/kernels/simd.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

#if defined(CONVCORE_ISA_avx512)
typedef __m512 V;
inline V vzero() { return _mm512_setzero_ps(); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline V vloada(const float* p) { return _mm512_load_ps(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V vbcast(const float* p) { return _mm512_set1_ps(*p); }
inline V vset1(float s) { return _mm512_set1_ps(s); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vmaxv(V a, V b) { return _mm512_max_ps(a, b); }
inline V vminv(V a, V b) { return _mm512_min_ps(a, b); }
#elif defined(CONVCORE_ISA_avx2)
typedef __m256 V;
inline V vzero() { return _mm256_setzero_ps(); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline V vloada(const float* p) { return _mm256_load_ps(p); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V vbcast(const float* p) { return _mm256_broadcast_ss(p); }
inline V vset1(float s) { return _mm256_set1_ps(s); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vmaxv(V a, V b) { return _mm256_max_ps(a, b); }
inline V vminv(V a, V b) { return _mm256_min_ps(a, b); }
#elif defined(__SSE2__)
typedef __m128 V;
inline V vzero() { return _mm_setzero_ps(); }
inline V vload(const float* p) { return _mm_loadu_ps(p); }
inline V vloada(const float* p) { return _mm_load_ps(p); }
inline void vstore(float* p, V v) { _mm_storeu_ps(p, v); }
inline V vbcast(const float* p) { return _mm_load1_ps(p); }
inline V vset1(float s) { return _mm_set1_ps(s); }
// No FMA in the baseline: multiply then add (a different rounding than the
// FMA ISAs, but the same for every thread count).
inline V vfma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
inline V vadd(V a, V b) { return _mm_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm_mul_ps(a, b); }
inline V vmaxv(V a, V b) { return _mm_max_ps(a, b); }
inline V vminv(V a, V b) { return _mm_min_ps(a, b); }
#else
// Portable fallback (aarch64 and other non-x86 targets): GCC vector
// extensions; the compiler maps them to NEON where it can.
typedef vf V;
inline V vzero() { return vf{}; }
inline V vload(const float* p) { return load(p); }
inline V vloada(const float* p) { return *reinterpret_cast<const vf*>(p); }
inline void vstore(float* p, V v) { store(p, v); }
inline V vbcast(const float* p) { return splat(*p); }
inline V vset1(float s) { return splat(s); }
inline V vfma(V a, V b, V c) { return a * b + c; }
inline V vadd(V a, V b) { return a + b; }
inline V vsub(V a, V b) { return a - b; }
inline V vmul(V a, V b) { return a * b; }
inline V vmaxv(V a, V b) { return vmax(a, b); }
inline V vminv(V a, V b) { return vmin(a, b); }
#endif

// The even lanes of the 2*kVW floats (a, b): a[0], a[2], ..., b[0], b[2], ...
inline V veven(V a, V b) {
#if defined(CONVCORE_ISA_avx512)
  const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_ps(a, idx, b);
#elif defined(CONVCORE_ISA_avx2)
  const __m256 t = _mm256_shuffle_ps(a, b, 0x88);
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
#elif defined(__SSE2__)
  return _mm_shuffle_ps(a, b, 0x88);
#else
  return V{a[0], a[2], b[0], b[2]};
#endif
}

// p[0], p[2], ..., p[2*(kVW-1)]: reads 2*kVW floats from p.
inline V vload_even(const float* p) { return veven(vload(p), vload(p + kVW)); }

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
