// Shifted-GEMM convolution kernels (one copy per ISA): the micro-kernel loop
// with B rows read in place from a zero-padded input (row k = base +
// offs[k]), and the copy of the flat, padded-width result into the output
// planes with the epilogue. See ShiftedRunner in cpu/conv2d_forward.cpp.
#include <algorithm>
#include <vector>

#include "convcore/cpu/kernels/row_gather.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

// Row panels outer, column panels inner: each MR-row panel of C (and of the
// residual) is then written (read) as MR sequential streams, which the
// hardware prefetchers follow; column-outer order touches every row of the
// block per panel, hundreds of streams for a wide layer (measured 1.5x
// slower with a residual on 56x56 planes). B stays in L2 for the job.
void gemm_block_shifted(index_t kc, index_t mc, index_t nc, const float* Ap, const float* base,
                        const index_t* offs, float* C, index_t ldc, const GemmTileOut& out) {
  for (index_t ir = 0; ir < mc; ir += kMR) {
    GemmTileOut o = out;
    if (o.bias) o.bias += ir;
    const float* R = o.residual ? o.residual + ir * o.ldr : nullptr;
    const index_t mr = std::min<index_t>(kMR, mc - ir);
    for (index_t jr = 0; jr < nc; jr += kNR) {
      if (R) o.residual = R + jr;
      const index_t nr = std::min<index_t>(kNR, nc - jr);
      if (ir == 0)
        micro_kernel_src<kMR, kNV>(kc, Ap, ShiftedBPrefetch{{base + jr, offs}}, C + jr, ldc, mr,
                                   nr, o);
      else
        micro_kernel_src<kMR, kNV>(kc, Ap + ir * kc, ShiftedB{base + jr, offs},
                                   C + ir * ldc + jr, ldc, mr, nr, o);
    }
  }
}

#if defined(CONVCORE_ISA_avx512) || defined(CONVCORE_ISA_avx2)
namespace {

// One output-row piece of a tile: lanes [t0, t1) of its NR flat columns,
// stored at plane offset out + lane (so lane t0 lands on its pixel).
struct Seg {
  int t0, t1;
  index_t out;
};

// The tile's rows (< mr) into their output planes, one row piece at a time;
// whole vectors go out with plain stores, partial ones masked (masked-off
// lanes are never touched, so pieces next to the plane's ends are safe).
template <int MR, int NV>
inline void store_segments(const V (&acc)[MR][NV], const Seg* segs, int ns, float* C,
                           index_t ldc, const GemmTileOut& o, index_t mr) {
  const V beta = vset1(o.beta), lo = vset1(o.lo), hi = vset1(o.hi);
  const float* R = o.final ? o.residual : nullptr;
  for (int s = 0; s < ns; ++s) {
    const Seg g = segs[s];
    Mask m[NV];
    int kind[NV];  // 0: no lanes, 1: some, 2: all
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int a = std::max(g.t0 - v * kVW, 0), b = std::min(g.t1 - v * kVW, int(kVW));
      kind[v] = b <= a ? 0 : (b - a == kVW ? 2 : 1);
      if (kind[v] == 1) m[v] = lane_mask(a, b);
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= mr) continue;
      const V bias = vset1(o.final && o.bias ? o.bias[i] : 0.f);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        if (kind[v] == 0) continue;
        const bool full = kind[v] == 2;
        float* p = C + i * ldc + g.out + v * kVW;
        V r = acc[i][v];
        if (o.beta != 0.f) r = vfma(beta, full ? vload(p) : mload(p, m[v]), r);
        if (o.final) {
          if (o.bias) r = vadd(r, bias);
          if (R) {
            const float* q = R + i * o.ldr + g.out + v * kVW;
            r = vadd(r, full ? vload(q) : mload(q, m[v]));
          }
          if (o.clamp) r = vminv(vmaxv(r, lo), hi);
        }
        if (full)
          vstore(p, r);
        else
          mstore(p, m[v], r);
      }
    }
  }
}

}  // namespace

void gemm_block_flat(index_t kc, index_t mc, index_t j0, index_t j1, const float* Ap,
                     const float* base, const index_t* offs, index_t Wf, index_t OW, float* C,
                     index_t ldc, const GemmTileOut& out) {
  // Row pieces of every column panel, found once (a few divisions each).
  const index_t np = (j1 - j0 + kNR - 1) / kNR;
  thread_local std::vector<Seg> segs;
  thread_local std::vector<int> first;
  segs.clear();
  first.assign(size_t(np + 1), 0);
  for (index_t jp = 0; jp < np; ++jp) {
    const index_t j = j0 + jp * kNR, jend = std::min(j1, j + kNR);
    first[size_t(jp)] = int(segs.size());
    for (index_t c = j; c < jend;) {
      const index_t oh = c / Wf, ow = c % Wf;
      const index_t row_end = std::min(jend, c + (Wf - ow));
      const index_t valid_end = std::min(row_end, c + std::max<index_t>(0, OW - ow));
      if (valid_end > c) segs.push_back({int(c - j), int(valid_end - j), oh * OW + ow - (c - j)});
      c = row_end;
    }
  }
  first[size_t(np)] = int(segs.size());
  // Plain pointers from here: a thread_local touched inside the tile loop
  // costs a __tls_get_addr call per tile, with all accumulators spilled.
  const Seg* seg = segs.data();
  const int* fst = first.data();
  // Row panels outer (sequential output streams; see gemm_block_shifted).
  for (index_t ir = 0; ir < mc; ir += kMR) {
    GemmTileOut o = out;
    if (o.bias) o.bias += ir;
    if (o.residual) o.residual += ir * o.ldr;
    const index_t mr = std::min<index_t>(kMR, mc - ir);
    for (index_t jp = 0; jp < np; ++jp) {
      const int s0 = fst[jp], ns = fst[jp + 1] - s0;
      if (ns == 0) continue;
      V acc[kMR][kNV];
      const ShiftedB B{base + j0 + jp * kNR, offs};
      if (ir == 0)
        accumulate<kMR, kNV>(kc, Ap, ShiftedBPrefetch{B}, acc);
      else
        accumulate<kMR, kNV>(kc, Ap + ir * kc, B, acc);
      store_segments<kMR, kNV>(acc, seg + s0, ns, C + ir * ldc, ldc, o, mr);
    }
  }
}
#endif

namespace {

// One phase row: d[q] = xr[q * sw + off] for the columns q whose input
// column lies in [0, W), zeros elsewhere (q < Wf).
inline void fill_row(const float* xr, index_t W, index_t sw, index_t off, index_t Wf, float* d) {
  // columns q whose iw = q*sw + off lies in [0, W)
  const index_t qa = std::min(Wf, off >= 0 ? index_t(0) : (-off + sw - 1) / sw);
  const index_t qb = std::clamp<index_t>(W - off <= 0 ? 0 : (W - off - 1) / sw + 1, qa, Wf);
  std::fill(d, d + qa, 0.f);
  gather_row(xr + off + qa * sw, W - off - qa * sw, qb - qa, sw, d + qa, qb - qa);
  std::fill(d + qb, d + Wf, 0.f);
}

}  // namespace

void shifted_fill_rows(const float* xc, index_t H, index_t W, index_t sh, index_t sw, index_t ph,
                       index_t pad_t, index_t off, index_t r0, index_t r1, index_t Wf,
                       float* d) {
  for (index_t r = r0; r < r1; ++r, d += Wf) {
    const index_t ih = r * sh + ph - pad_t;
    if (ih < 0 || ih >= H)
      std::fill(d, d + Wf, 0.f);
    else
      fill_row(xc + ih * W, W, sw, off, Wf, d);
  }
}

void shifted_unflatten(const float* Cb, index_t ldcb, index_t mc, index_t j0, index_t j1,
                       index_t Wf, index_t OW, index_t ohw, float* y, const float* res,
                       const float* bias, bool clamp, float lo, float hi) {
  for (index_t i = 0; i < mc; ++i) {
    const float b = bias ? bias[i] : 0.f;
    const float* src = Cb + i * ldcb - j0;  // src[j]: flat column j
    float* yi = y + i * ohw;
    const float* ri = res ? res + i * ohw : nullptr;
    for (index_t j = j0; j < j1;) {
      const index_t oh = j / Wf, ow = j % Wf;
      const index_t end = std::min(j1, oh * Wf + OW);
      if (ow < OW) {
        const index_t n = end - j, o = oh * OW + ow;
        const float* s = src + j;
        float* d = yi + o;
        if (ri) {
          const float* r = ri + o;
          for (index_t t = 0; t < n; ++t) d[t] = s[t] + b + r[t];
        } else {
          for (index_t t = 0; t < n; ++t) d[t] = s[t] + b;
        }
        if (clamp)
          for (index_t t = 0; t < n; ++t) d[t] = std::min(std::max(d[t], lo), hi);
      }
      j = (oh + 1) * Wf;
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
