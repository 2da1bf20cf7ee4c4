// Packing of the implicit-GEMM B operand straight from the input image: no
// im2col buffer. Each row of the (virtual) im2col matrix is first gathered
// into a contiguous line (whole output-row segments: plain copies at stride
// 1, zero runs for the padding), then dealt into the NR-wide panels with
// full-vector copies.
#include <algorithm>
#include <cstring>
#include <vector>

#include "convcore/cpu/kernels/row_gather.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {

// line[0:nc) -> row k of the panels (zero-padded to whole panels; the line
// has room for the padding).
template <int kNR>
inline void deal(const float* line, index_t nc, index_t kc, index_t k, float* Bp) {
  const index_t np = (nc + kNR - 1) / kNR;
  const float* s = line;
  float* d = Bp + k * kNR;
  if constexpr (kNR == 7) {
    // 8 floats at once, the 8th landing on row k + 1's first (written
    // next); the last row of the block copies 7.
    if (k + 1 < kc) {
      for (index_t jp = 0; jp < np; ++jp, s += kNR, d += kc * kNR) std::memcpy(d, s, 8 * sizeof(float));
      return;
    }
  }
  for (index_t jp = 0; jp < np; ++jp, s += kNR, d += kc * kNR)
#pragma GCC unroll 32
    for (int t = 0; t < kNR; ++t) d[t] = s[t];
}

template <int kNR>
void pack_b_t(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
              index_t nc, float* Bp) {
  const index_t hw = p.H * p.W;
  const index_t ncp = (nc + kNR - 1) / kNR * kNR;
  const bool plain = p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                     p.pad_t == 0 && p.pad_l == 0 && p.OW == p.W && p.OH == p.H;
  if (plain) {  // column j reads x[c][j]: NR-float slices of each channel row
    const index_t full = nc / kNR * kNR;
    for (index_t jp = 0; jp < full; jp += kNR) {
      float* dst = Bp + jp * kc;
      const float* src = xg + p0 * hw + j0 + jp;
      for (index_t k = 0; k < kc; ++k, dst += kNR, src += hw)
#pragma GCC unroll 32
        for (int t = 0; t < kNR; ++t) dst[t] = src[t];
    }
    if (full < nc) {
      const index_t nr = nc - full;
      float* dst = Bp + full * kc;
      const float* src = xg + p0 * hw + j0 + full;
      for (index_t k = 0; k < kc; ++k, dst += kNR, src += hw) {
        for (index_t t = 0; t < nr; ++t) dst[t] = src[t];
        for (index_t t = nr; t < kNR; ++t) dst[t] = 0.f;
      }
    }
    return;
  }
  thread_local std::vector<float> line_buf;
  if (index_t(line_buf.size()) < ncp + 1) line_buf.resize(size_t(ncp + 1));  // + 1: deal's 8-float copies
  float* line = line_buf.data();
  std::fill(line + nc, line + ncp, 0.f);
  const index_t khw = p.kh * p.kw, sw = p.stride_w;
  const index_t oh0 = j0 / p.OW, ow0 = j0 % p.OW;
  // Row p0 + k = (c, ki, kj), stepped: no divisions per row, whose cost is
  // not small next to copying a short (7x7 plane) row.
  index_t c = p0 / khw, ki = p0 % khw / p.kw, kj = p0 % p.kw;
  for (index_t k = 0; k < kc; ++k) {
    if (k > 0 && ++kj == p.kw) {
      kj = 0;
      if (++ki == p.kh) {
        ki = 0;
        ++c;
      }
    }
    const float* xc = xg + c * hw;
    const index_t off_w = kj * p.dil_w - p.pad_l;
    // ow whose tap iw = ow*sw + off_w lies inside [0, W)
    const index_t a = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
    const index_t b = p.W - off_w <= 0 ? 0 : (p.W - off_w - 1) / sw + 1;
    index_t jj = 0, oh = oh0, ow = ow0;
    while (jj < nc) {
      const index_t seg = std::min(p.OW - ow, nc - jj);
      const index_t ih = oh * p.stride_h - p.pad_t + ki * p.dil_h;
      float* d = line + jj - ow;  // d[ow] is this segment's column ow
      if (ih < 0 || ih >= p.H) {
        for (index_t t = ow; t < ow + seg; ++t) d[t] = 0.f;
      } else {
        const index_t lo = std::clamp(a, ow, ow + seg), hi = std::clamp(b, lo, ow + seg);
        for (index_t t = ow; t < lo; ++t) d[t] = 0.f;
        const float* xr = xc + ih * p.W + off_w;  // xr[t * sw]: column t
        // (may write up to a vector past hi, short of the line's zeroed
        // padding from nc: what it overwrites is written after)
        gather_row(xr + lo * sw, p.W - off_w - lo * sw, hi - lo, sw, d + lo,
                   std::min(hi - lo + kVW, nc - (jj + lo - ow)));
        for (index_t t = hi; t < ow + seg; ++t) d[t] = 0.f;
      }
      jj += seg;
      ow = 0;
      ++oh;
    }
    deal<kNR>(line, nc, kc, k, Bp);
  }
}

}  // namespace

void conv_pack_b(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                 index_t nc, float* Bp) {
  pack_b_t<kNR>(p, xg, p0, kc, j0, nc, Bp);
}

#if defined(CONVCORE_ISA_avx512)
void conv_pack_b_n8(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                    index_t nc, float* Bp) {
  pack_b_t<kNRSmall>(p, xg, p0, kc, j0, nc, Bp);
}
void gemm_block_small(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                      float* C, index_t ldc, const GemmTileOut& out) {
  gemm_block_n8(kc, mc, nc, Ap, Bp, C, ldc, out);
}
// Spatial positions as GEMM rows, 7 per register tile (7x7 and 14x14
// planes fill whole tiles): the pixel panels are conv_pack_b panels 7 wide.
void conv_pack_b_7(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                   index_t nc, float* Bp) {
  pack_b_t<7>(p, xg, p0, kc, j0, nc, Bp);
}
// Here B holds the weights (kc x nc, read once per call, from L3 or memory
// in a model) and A the pixels (mc <= 196 rows). Where the L1 holds a B
// panel and a 7-row A tile (48 KB: Intel's AVX-512 cores; not Zen 4's 32
// KB), each B panel stays there for all pixel tiles (column panels outer),
// the next one prefetched while the first tile runs. Row-outer order
// streams the whole B block from L2 for every 7-row tile, and the B loads
// stalled (perf: ~40% of the kernel's samples on ResNet-50's 7x7 layers).
// 1 thread, in the model (per node, Xeon): 512->2048 7x7 1.20-1.36 -> 0.94-0.98
// ms, 1024->2048 stride 2 2.37-2.53 -> 1.91.
void gemm_block_7(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp, float* C,
                  index_t ldc, const GemmTileOut& out) {
  const index_t l1 = kernels().l1d_bytes;
  if (mc <= 7 || kc * (kNR + 7) * index_t(sizeof(float)) > l1)
    return gemm_block_t<7, kNV>(kc, mc, nc, Ap, Bp, C, ldc, out);
  for (index_t jr = 0; jr < nc; jr += kNR) {
    const index_t nr = std::min<index_t>(kNR, nc - jr);
    const float* B = Bp + jr * kc;
    for (index_t ir = 0; ir < mc; ir += 7) {
      GemmTileOut o = out;  // (as gemm_block_t: bias per row, residual per tile)
      if (o.bias) o.bias += ir;
      if (o.residual) o.residual += ir * o.ldr + jr;
      const index_t mr = std::min<index_t>(7, mc - ir);
      if (ir == 0)
        micro_kernel_src<7, kNV>(kc, Ap, PackedBPrefetch{{B}, B + kc * kNR}, C + jr, ldc, mr, nr, o);
      else
        micro_kernel<7, kNV>(kc, Ap + ir * kc, B, C + ir * ldc + jr, ldc, mr, nr, o);
    }
  }
}
#endif

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
