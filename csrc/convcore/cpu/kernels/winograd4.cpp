// Winograd F(4x4, 3x3) transforms: each 4x4 output tile costs 36 multiply-
// adds per (in, out) channel pair instead of 144 (F(2x2) spends 16 per 2x2
// tile, i.e. 64 per 4x4), in 36 GEMMs (one per transform point xi). Used for
// layers with at least 64 channels on both sides, where the GEMMs dominate
// the larger transforms. Interpolation points 0, +-1, +-2, inf:
//   V = B^T d B,  B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
//                        0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1]
//   Y = A^T M A,  A^T = [1 1  1 1  1 0;  0 1 -1 2 -2 0;  0 1  1 4  4 0;
//                        0 1 -1 8 -8 1]
// Tiles are vectorised along a tile row: each padded input row is split into
// its four column phases, so tile tw's six columns are the unit-stride
// streams ph0[tw], ph1[tw], ph2[tw], ph3[tw], ph0[tw+1], ph1[tw+1].
#include <algorithm>
#include <vector>

#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"

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

}  // namespace

// As winograd_input (cpu/kernels/winograd.cpp) with 4x4-output tiles: 36 B
// operands of kc x nt for the tiles of tile rows [th0, th1).
void winograd4_input(const Conv2dParams& p, const float* xg, index_t c0, index_t kc,
                     index_t th0, index_t th1, float* Vp, index_t vstride, index_t nr) {
  const index_t TW = (p.OW + 3) / 4, nt = (th1 - th0) * TW;
  const index_t ntp = (nt + nr - 1) / nr * nr;
  const index_t TWv = (TW + kVW - 1) / kVW * kVW;  // tiles computed per row
  const index_t hw = p.H * p.W;
  // Phase rows: ph[i][m][q] = padded row i, column 4q + m; room for the
  // vector chunks past TW (+1 for the tiles' second phase-0/1 column).
  const index_t pl = TWv + kVW + 1;
  std::vector<float> ph(size_t(6 * 4 * pl), 0.f);
  const index_t ls = ntp + TWv;  // one line of transformed values per xi
  std::vector<float> line(size_t(36 * ls), 0.f);
  for (index_t c = 0; c < kc; ++c) {
    const float* xc = xg + (c0 + c) * hw;
    for (index_t th = th0; th < th1; ++th) {
      for (int i = 0; i < 6; ++i) {
        const index_t ih = 4 * th - p.pad_t + i;
        const float* xr = ih >= 0 && ih < p.H ? xc + ih * p.W : nullptr;
        for (int m = 0; m < 4; ++m) {
          float* d = ph.data() + (i * 4 + m) * pl;
          for (index_t q = 0; q < TW + 1; ++q) {
            const index_t iw = 4 * q + m - p.pad_l;
            d[q] = xr && iw >= 0 && iw < p.W ? xr[iw] : 0.f;
          }
        }
      }
      float* l = line.data() + (th - th0) * TW;
      for (index_t tw = 0; tw < TWv; tw += kVW) {
        V d[6][6], t[6][6];
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 6; ++j)
            d[i][j] = vload(ph.data() + (i * 4 + j % 4) * pl + tw + j / 4);
        for (int j = 0; j < 6; ++j) {  // B^T d: along the rows
          V col[6], out[6];
          for (int i = 0; i < 6; ++i) col[i] = d[i][j];
          bt6(col, out);
          for (int i = 0; i < 6; ++i) t[i][j] = out[i];
        }
        for (int i = 0; i < 6; ++i) {  // (B^T d) B: along the columns
          V out[6];
          bt6(t[i], out);
          for (int j = 0; j < 6; ++j) vstore(l + (i * 6 + j) * ls + tw, out[j]);
        }
      }
    }
    // deal the 36 lines into row c of each xi's panels (tiles >= nt: zero)
    for (int xi = 0; xi < 36; ++xi) {
      float* s = line.data() + xi * ls;
      std::fill(s + nt, s + ntp, 0.f);
      float* dpan = Vp + xi * vstride + c * nr;
      if (nr == kNR) {
        for (index_t jp = 0; jp < ntp; jp += kNR, s += kNR, dpan += kc * kNR)
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v) vstore(dpan + v * kVW, vload(s + v * kVW));
      } else {
        for (index_t jp = 0; jp < ntp; jp += nr, s += nr, dpan += kc * nr)
          for (index_t t = 0; t < nr; ++t) dpan[t] = s[t];
      }
    }
  }
}

// As winograd_output with 4x4-output tiles (36 matrices in M), vectorised
// over kVW tiles of a tile row; the 4x4 results are interleaved into four
// output rows through a small buffer.
void winograd4_output(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                      index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                      const float* res_img, const float* bias, bool clamp, float lo, float hi) {
  const index_t TW = (p.OW + 3) / 4, ohw = p.OH * p.OW;
  const index_t TWv = (TW + kVW - 1) / kVW * kVW;
  // The last chunk of a tile row is read through a zero-padded copy (M's
  // rows end at the job's last tile).
  std::vector<float> rows(size_t(4 * 4 * TWv));  // four output rows of the tile row
  alignas(64) float tail[36][kVW];
  alignas(64) float o16[4][4][kVW];
  for (index_t k = 0; k < mc; ++k) {
    const V b = vset1(bias ? bias[m0 + k] : 0.f);
    float* yk = y_img + (m0 + k) * ohw;
    const float* rk = res_img ? res_img + (m0 + k) * ohw : nullptr;
    for (index_t th = th0; th < th1; ++th) {
      const float* m = M + k * ld + (th - th0) * TW;
      for (index_t tw = 0; tw < TW; tw += kVW) {
        const index_t nv = std::min<index_t>(kVW, TW - tw);
        V t[4][6];  // A^T m: along the rows
        for (int j = 0; j < 6; ++j) {
          V col[6], out[4];
          for (int i = 0; i < 6; ++i) {
            const float* src = m + (i * 6 + j) * mstride + tw;
            if (nv == kVW) {
              col[i] = vload(src);
            } else {
              for (index_t l = 0; l < kVW; ++l) tail[i * 6 + j][l] = l < nv ? src[l] : 0.f;
              col[i] = vload(tail[i * 6 + j]);
            }
          }
          at6(col, out);
          for (int a = 0; a < 4; ++a) t[a][j] = out[a];
        }
        for (int a = 0; a < 4; ++a) {
          V out[4];
          at6(t[a], out);
          for (int c = 0; c < 4; ++c) vstore(o16[a][c], vadd(out[c], b));
        }
        for (int a = 0; a < 4; ++a) {
          float* r = rows.data() + a * 4 * TWv + 4 * tw;
          for (index_t l = 0; l < nv; ++l)
            for (int c = 0; c < 4; ++c) r[4 * l + c] = o16[a][c][l];
        }
      }
      for (int a = 0; a < 4; ++a) {
        const index_t oh = 4 * th + a;
        if (oh >= p.OH) break;
        const float* src = rows.data() + a * 4 * TWv;
        float* yr = yk + oh * p.OW;
        if (rk) {
          const float* rr = rk + oh * p.OW;
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = src[ow] + rr[ow];
        } else {
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = src[ow];
        }
        if (clamp)
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = std::min(std::max(yr[ow], lo), hi);
      }
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
