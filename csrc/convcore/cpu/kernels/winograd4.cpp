// Winograd F(4x4, 3x3) transforms: each 4x4 output tile costs 36 multiply-
// adds per (in, out) channel pair instead of 144 (F(2x2) spends 16 per 2x2
// tile, i.e. 64 per 4x4), in 36 GEMMs (one per transform point xi). Used for
// layers with at least 64 channels on both sides, where the GEMMs dominate
// the larger transforms. Interpolation points 0, +-1, +-2, inf:
//   V = B^T d B,  B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
//                        0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1]
//   Y = A^T M A,  A^T = [1 1  1 1  1 0;  0 1 -1 2 -2 0;  0 1  1 4  4 0;
//                        0 1 -1 8 -8 1]
// Each padded input row is split into its four column phases, so tile tw's
// six columns are ph0[tw], ph1[tw], ph2[tw], ph3[tw], ph0[tw+1], ph1[tw+1].
#include <algorithm>
#include <vector>

#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"
#include "convcore/cpu/kernels/winograd_deal.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

// out = B^T in (a column of six vectors).
inline void bt6(const V (&d)[6], V (&o)[6]) {
  const V four = vset1(4.f), five = vset1(5.f), two = vset1(2.f);
  o[0] = vsub(vfma(four, d[0], d[4]), vmul(five, d[2]));
  const V a = vsub(d[4], vmul(four, d[2]));  // d4 - 4 d2
  const V b = vsub(d[3], vmul(four, d[1]));  // d3 - 4 d1
  o[1] = vadd(a, b);
  o[2] = vsub(a, b);
  const V c = vsub(d[4], d[2]);              // d4 - d2
  const V e = vmul(two, vsub(d[3], d[1]));   // 2 (d3 - d1)
  o[3] = vadd(c, e);
  o[4] = vsub(c, e);
  o[5] = vsub(vfma(four, d[1], d[5]), vmul(five, d[3]));
}

// out = A^T m (six vectors -> four).
inline void at6(const V (&m)[6], V (&o)[4]) {
  const V s12 = vadd(m[1], m[2]), d12 = vsub(m[1], m[2]);
  const V s34 = vadd(m[3], m[4]), d34 = vsub(m[3], m[4]);
  o[0] = vadd(vadd(m[0], s12), s34);
  o[1] = vfma(vset1(2.f), d34, d12);
  o[2] = vfma(vset1(4.f), s34, s12);
  o[3] = vadd(vfma(vset1(8.f), d34, d12), m[5]);
}

// The four column phases of 4*kVW consecutive floats: p[m][q] = s[4q + m].
inline void split4(const float* s, V (&p)[4]) {
#if defined(CONVCORE_ISA_avx512)
  const __m512i i01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const __m512i i23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const __m512 a = _mm512_loadu_ps(s), b = _mm512_loadu_ps(s + 16);
  const __m512 c = _mm512_loadu_ps(s + 32), d = _mm512_loadu_ps(s + 48);
  const __m512 e_ab = _mm512_permutex2var_ps(a, i01, b), f_ab = _mm512_permutex2var_ps(a, i23, b);
  const __m512 e_cd = _mm512_permutex2var_ps(c, i01, d), f_cd = _mm512_permutex2var_ps(c, i23, d);
  p[0] = _mm512_permutex2var_ps(e_ab, lo, e_cd);
  p[1] = _mm512_permutex2var_ps(e_ab, hi, e_cd);
  p[2] = _mm512_permutex2var_ps(f_ab, lo, f_cd);
  p[3] = _mm512_permutex2var_ps(f_ab, hi, f_cd);
#else
  alignas(64) float t[4][kVW];
  for (int q = 0; q < kVW; ++q)
    for (int m = 0; m < 4; ++m) t[m][q] = s[4 * q + m];
  for (int m = 0; m < 4; ++m) p[m] = vloada(t[m]);
#endif
}

// The inverse: d[4q + m] = p[m][q] for 4*kVW floats.
inline void merge4(const V (&p)[4], float* d) {
#if defined(CONVCORE_ISA_avx512)
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i qa = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i qb = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const __m512 x01l = _mm512_permutex2var_ps(p[0], lo, p[1]);
  const __m512 x01h = _mm512_permutex2var_ps(p[0], hi, p[1]);
  const __m512 x23l = _mm512_permutex2var_ps(p[2], lo, p[3]);
  const __m512 x23h = _mm512_permutex2var_ps(p[2], hi, p[3]);
  _mm512_storeu_ps(d, _mm512_permutex2var_ps(x01l, qa, x23l));
  _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(x01l, qb, x23l));
  _mm512_storeu_ps(d + 32, _mm512_permutex2var_ps(x01h, qa, x23h));
  _mm512_storeu_ps(d + 48, _mm512_permutex2var_ps(x01h, qb, x23h));
#else
  alignas(64) float t[4][kVW];
  for (int m = 0; m < 4; ++m) vstore(t[m], p[m]);
  for (int q = 0; q < kVW; ++q)
    for (int m = 0; m < 4; ++m) d[4 * q + m] = t[m][q];
#endif
}

}  // namespace

// As winograd_input (cpu/kernels/winograd.cpp) with 4x4-output tiles: 36 B
// operands of kc x nt for the tiles of tile rows [th0, th1). Vectorised over
// the job's tiles in order (across tile rows, so 7-tile rows fill vectors
// too): first each tile's 36 inputs are gathered into 36 dense lines (one
// per tile position, from the column phases of the padded input rows).
void winograd4_input(const Conv2dParams& p, const float* xg, index_t c0, index_t kc,
                     index_t th0, index_t th1, float* Vp, index_t vstride, index_t nr) {
  const index_t TW = (p.OW + 3) / 4, nt = (th1 - th0) * TW;
  const index_t ntp = (nt + nr - 1) / nr * nr;
  const index_t ntv = (nt + kVW - 1) / kVW * kVW;
  const index_t hw = p.H * p.W;
  const index_t nq = (TW + 1 + kVW - 1) / kVW * kVW;  // phase columns per row, whole vectors
  // One zero-padded input row: column q is input column q - pad_l, wide
  // enough for the phase split's whole vectors.
  const index_t rl = std::max<index_t>(p.W + p.pad_l, 4 * nq);
  thread_local std::vector<float> prow, ph, G, line;
  prow.assign(size_t(rl), 0.f);
  ph.resize(size_t(4 * nq));
  const index_t gs = std::max(ntv, ntp);  // line length of G and line
  if (G.size() < size_t(36 * gs)) G.assign(size_t(36 * gs), 0.f);
  if (line.size() < size_t(36 * gs)) line.assign(size_t(36 * gs), 0.f);
  for (index_t c = 0; c < kc; ++c) {
    const float* xc = xg + (c0 + c) * hw;
    for (index_t th = th0; th < th1; ++th) {
      const index_t t0 = (th - th0) * TW;
      for (int i = 0; i < 6; ++i) {
        const index_t ih = 4 * th - p.pad_t + i;
        if (ih < 0 || ih >= p.H) {
          for (int j = 0; j < 6; ++j) std::fill_n(G.data() + (i * 6 + j) * gs + t0, TW, 0.f);
          continue;
        }
        std::copy(xc + ih * p.W, xc + (ih + 1) * p.W, prow.data() + p.pad_l);
        for (index_t q = 0; q < nq; q += kVW) {
          V v[4];
          split4(prow.data() + 4 * q, v);
          for (int m = 0; m < 4; ++m) vstore(ph.data() + m * nq + q, v[m]);
        }
        // tile column j of tile tw is phase j % 4, entry tw + j / 4
        for (int j = 0; j < 6; ++j)
          std::copy_n(ph.data() + (j % 4) * nq + j / 4, TW, G.data() + (i * 6 + j) * gs + t0);
      }
    }
    for (index_t t = 0; t < ntv; t += kVW) {
      V d[6][6], tt[6][6];
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) d[i][j] = vload(G.data() + (i * 6 + j) * gs + t);
      for (int j = 0; j < 6; ++j) {  // B^T d: along the rows
        V col[6], out[6];
        for (int i = 0; i < 6; ++i) col[i] = d[i][j];
        bt6(col, out);
        for (int i = 0; i < 6; ++i) tt[i][j] = out[i];
      }
      for (int i = 0; i < 6; ++i) {  // (B^T d) B: along the columns
        V out[6];
        bt6(tt[i], out);
        for (int j = 0; j < 6; ++j) vstore(line.data() + (i * 6 + j) * gs + t, out[j]);
      }
    }
    winograd_deal(line.data(), gs, 36, nt, ntp, Vp, vstride, c, kc, nr);
  }
}

// As winograd_output with 4x4-output tiles (36 matrices in M), vectorised
// over the job's tiles in order; the 4x4 results are interleaved (merge4)
// into four flat output rows per tile row, then copied out with the epilogue.
void winograd4_output(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                      index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                      const float* res_img, const float* bias, bool clamp, float lo, float hi) {
  const index_t TW = (p.OW + 3) / 4, ohw = p.OH * p.OW, nt = (th1 - th0) * TW;
  const index_t ntv = (nt + kVW - 1) / kVW * kVW;
  thread_local std::vector<float> Z;  // Z[a][4t + c]: row a of tile t, column c
  if (Z.size() < size_t(4 * 4 * ntv)) Z.resize(size_t(4 * 4 * ntv));
  alignas(64) float tail[36][kVW];
  for (index_t k = 0; k < mc; ++k) {
    const float* mk = M + k * ld;
    for (index_t t = 0; t < nt; t += kVW) {
      const index_t nv = std::min<index_t>(kVW, nt - t);
      V tr[4][6];  // A^T m: along the rows
      for (int j = 0; j < 6; ++j) {
        V col[6], out[4];
        for (int i = 0; i < 6; ++i) {
          const float* src = mk + (i * 6 + j) * mstride + t;
          if (nv == kVW) {
            col[i] = vload(src);
          } else {  // M's rows end at the job's last tile
            for (index_t l = 0; l < kVW; ++l) tail[i * 6 + j][l] = l < nv ? src[l] : 0.f;
            col[i] = vload(tail[i * 6 + j]);
          }
        }
        at6(col, out);
        for (int a = 0; a < 4; ++a) tr[a][j] = out[a];
      }
      for (int a = 0; a < 4; ++a) {
        V out[4];
        at6(tr[a], out);
        merge4(out, Z.data() + a * 4 * ntv + 4 * t);
      }
    }
    const float b = bias ? bias[m0 + k] : 0.f;
    float* yk = y_img + (m0 + k) * ohw;
    const float* rk = res_img ? res_img + (m0 + k) * ohw : nullptr;
    for (index_t th = th0; th < th1; ++th)
      for (int a = 0; a < 4; ++a) {
        const index_t oh = 4 * th + a;
        if (oh >= p.OH) break;
        const float* src = Z.data() + a * 4 * ntv + 4 * (th - th0) * TW;
        float* yr = yk + oh * p.OW;
        if (rk) {
          const float* rr = rk + oh * p.OW;
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = src[ow] + b + rr[ow];
        } else {
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = src[ow] + b;
        }
        if (clamp)
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = std::min(std::max(yr[ow], lo), hi);
      }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
