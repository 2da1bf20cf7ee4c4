// Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions: each 2x2
// output tile costs 16 multiply-adds per (in, out) channel pair instead of
// 36, spent in 16 GEMMs (one per transform point xi) over the packed
// transformed weights. The input transform writes straight into the GEMM's
// B panels; the output transform applies bias, residual and clamp.
//   V = B^T d B,  B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   Y = A^T M A,  A^T = [1 1 1 0; 0 1 -1 -1]
// Tiles are vectorised along a tile row: the padded input rows are split
// into even and odd columns so that tile tw's four columns are the unit-
// stride streams e[tw], o[tw], e[tw+1], o[tw+1].
#include <algorithm>
#include <vector>

#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"
#include "convcore/cpu/kernels/winograd_deal.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

// Transformed input of channels [c0, c0+kc) for the tiles of tile rows
// [th0, th1) (all TW tiles of each row), as 16 B operands of kc x nt, each
// in nr-column panels (the table's gemm_nr or gemm_nr_small): Vp + xi * vstride.
void winograd_input(const Conv2dParams& p, const float* xg, index_t c0, index_t kc,
                    index_t th0, index_t th1, float* Vp, index_t vstride, index_t nr) {
  const index_t TW = (p.OW + 1) / 2, nt = (th1 - th0) * TW;
  const index_t ntp = (nt + nr - 1) / nr * nr;
  const index_t TWv = (TW + kVW - 1) / kVW * kVW;  // tiles computed per row
  const index_t hw = p.H * p.W;
  // Four zero-padded input rows: column q is input column q - pad_l. Room
  // for the vector loads of the last (partial) chunk of tiles.
  const index_t rl = std::max<index_t>(p.W + p.pad_l, 2 * TWv + 2 * kVW + 4);
  std::vector<float> rows(size_t(4 * rl), 0.f);
  // One line of transformed values per xi; lines hold whole vector chunks.
  const index_t ls = ntp + TWv;
  std::vector<float> line(size_t(16 * ls), 0.f);
  for (index_t c = 0; c < kc; ++c) {
    const float* xc = xg + (c0 + c) * hw;
    for (index_t th = th0; th < th1; ++th) {
      const float* r[4];
      for (int i = 0; i < 4; ++i) {
        float* d = rows.data() + i * rl + p.pad_l;
        const index_t ih = 2 * th - p.pad_t + i;
        if (ih >= 0 && ih < p.H) std::copy(xc + ih * p.W, xc + (ih + 1) * p.W, d);
        else std::fill(d, d + p.W, 0.f);
        r[i] = rows.data() + i * rl;
      }
      float* l = line.data() + (th - th0) * TW;
      for (index_t tw = 0; tw < TWv; tw += kVW) {
        V t[4][4];  // B^T d over rows, d[i][j] = row i, column 2*tw + j
        V d[4][4];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) d[i][j] = vload_even(r[i] + 2 * tw + j);
        for (int j = 0; j < 4; ++j) {
          t[0][j] = vsub(d[0][j], d[2][j]);
          t[1][j] = vadd(d[1][j], d[2][j]);
          t[2][j] = vsub(d[2][j], d[1][j]);
          t[3][j] = vsub(d[1][j], d[3][j]);
        }
        for (int i = 0; i < 4; ++i) {
          float* li = l + (i * 4) * ls + tw;
          vstore(li, vsub(t[i][0], t[i][2]));
          vstore(li + ls, vadd(t[i][1], t[i][2]));
          vstore(li + 2 * ls, vsub(t[i][2], t[i][1]));
          vstore(li + 3 * ls, vsub(t[i][1], t[i][3]));
        }
      }
    }
    winograd_deal(line.data(), ls, 16, nt, ntp, Vp, vstride, c, kc, nr);
  }
}

// y tiles of output channels [m0, m0+mc) from M (16 matrices, row k at
// M + xi*mstride + (k - m0)*ld, column = tile index within the job).
void winograd_output(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                     index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                     const float* res_img, const float* bias, bool clamp, float lo, float hi) {
  const index_t TW = (p.OW + 1) / 2, ohw = p.OH * p.OW;
  std::vector<float> r0(size_t(2 * TW)), r1(size_t(2 * TW));
  for (index_t k = 0; k < mc; ++k) {
    const float b = bias ? bias[m0 + k] : 0.f;
    float* yk = y_img + (m0 + k) * ohw;
    const float* rk = res_img ? res_img + (m0 + k) * ohw : nullptr;
    for (index_t th = th0; th < th1; ++th) {
      const float* m = M + k * ld + (th - th0) * TW;
      for (index_t tw = 0; tw < TW; ++tw) {
        float v[16];
        for (int xi = 0; xi < 16; ++xi) v[xi] = m[xi * mstride + tw];
        float t[2][4];  // A^T m (rows)
        for (int j = 0; j < 4; ++j) {
          t[0][j] = v[j] + v[4 + j] + v[8 + j];
          t[1][j] = v[4 + j] - v[8 + j] - v[12 + j];
        }
        r0[2 * tw] = t[0][0] + t[0][1] + t[0][2] + b;
        r0[2 * tw + 1] = t[0][1] - t[0][2] - t[0][3] + b;
        r1[2 * tw] = t[1][0] + t[1][1] + t[1][2] + b;
        r1[2 * tw + 1] = t[1][1] - t[1][2] - t[1][3] + b;
      }
      for (int a = 0; a < 2; ++a) {
        const index_t oh = 2 * th + a;
        if (oh >= p.OH) break;
        const float* src = a == 0 ? r0.data() : r1.data();
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
