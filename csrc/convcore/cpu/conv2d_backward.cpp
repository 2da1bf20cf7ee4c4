// conv2d backward: grad_input, grad_weight, grad_bias.
//
// Algorithms (chosen here, per shape):
//   depthwise (groups == C > 1): direct per-plane kernels (kernels/dwconv_backward.cpp)
//     on a zero-padded, stride-phase-split copy of the plane.
//   grad_input, small planes (< 256 outputs, N > 1): col = W^T * dY over
//     several whole images side by side (a wide GEMM), then col2im.
//   grad_input, 1x1 stride 1 no padding: one GEMM per image, W^T * dY straight
//     into grad_x (no col2im, no zeroing).
//   grad_input, otherwise: col = W^T * dY on column tiles of one image, added
//     back with col2im (per image, group and channel block, so no two jobs
//     write one plane and batch 1 still splits across threads).
//   grad_weight, small ungrouped 3- or 5-wide convs (the small-CNN layers):
//     direct dot products along output rows, no im2col (see
//     direct_backward_weight and cpu/kernels/conv_wgrad_direct.cpp).
//   grad_weight, otherwise: dW^T += col_step * dY_step^T, steps along the (image,
//     output position) axis: tiles of one image for large planes (1x1
//     operands read in place, no im2col), several whole images for small
//     ones, so late layers still get long GEMM reductions.
//
// Determinism: every floating-point sum happens in an order fixed by the
// shape alone (tiles and slot counts never depend on the thread count), so
// 1 and 2 threads give bitwise identical gradients. Threads only split
// independent outputs (channel blocks of dW / dX), or fixed "slots" of the
// reduction that are summed afterwards in slot order.
#include <algorithm>
#include <cstring>
#include <vector>

#include "convcore/conv2d.h"
#include "convcore/cpu/isa_table.h"
#include "convcore/cpu/kernels/conv_wgrad_direct.h"
#include "convcore/dispatch.h"
#include "convcore/parallel.h"

namespace convcore {

namespace {

bool is_depthwise(const Conv2dParams& p) { return p.groups == p.C && p.groups > 1; }
bool is_1x1(const Conv2dParams& p) { return p.kh == 1 && p.kw == 1; }
bool is_1x1_s1_nopad(const Conv2dParams& p) {
  return is_1x1(p) && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 && p.pad_l == 0 &&
         p.pad_b == 0 && p.pad_r == 0;
}
index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
float* align_up(float* p, index_t floats) {
  const auto a = uintptr_t(floats * index_t(sizeof(float)));
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + a - 1) / a * a);
}

// Valid output columns [lo, hi) of kernel column kj: 0 <= ow*sw + off < W.
struct ColRange {
  index_t lo, hi, off;
};
ColRange col_range(const Conv2dParams& p, index_t kj) {
  ColRange r;
  r.off = kj * p.dil_w - p.pad_l;
  r.lo = r.off >= 0 ? 0 : ceil_div(-r.off, p.stride_w);
  r.hi = p.W - r.off <= 0 ? 0 : std::min(p.OW, (p.W - 1 - r.off) / p.stride_w + 1);
  if (r.hi < r.lo) r.hi = r.lo;
  return r;
}

// Calls seg(oh, ow0, ow1, dst_offset) for the pieces of output positions
// [j0, j0 + cols) that lie on one output row.
template <typename F>
void for_each_row_segment(const Conv2dParams& p, index_t j0, index_t cols, F&& seg) {
  index_t j = j0;
  const index_t j1 = j0 + cols;
  while (j < j1) {
    const index_t oh = j / p.OW, ow0 = j % p.OW;
    const index_t ow1 = std::min(p.OW, ow0 + (j1 - j));
    seg(oh, ow0, ow1, j - j0 - ow0);
    j += ow1 - ow0;
  }
}

// im2col for channels [c0, c1) of one group image `xg`, output positions
// [j0, j0 + cols): col[r * ld + (j - j0)], r = (c - c0, ki, kj).
void im2col_rows(const Conv2dParams& p, const float* xg, index_t c0, index_t c1, index_t j0,
                 index_t cols, float* col, index_t ld) {
  index_t r = 0;
  for (index_t c = c0; c < c1; ++c)
    for (index_t ki = 0; ki < p.kh; ++ki)
      for (index_t kj = 0; kj < p.kw; ++kj, ++r) {
        const ColRange cr = col_range(p, kj);
        float* dst = col + r * ld;
        for_each_row_segment(p, j0, cols, [&](index_t oh, index_t ow0, index_t ow1, index_t o) {
          float* d = dst + o;  // d[ow] is output column ow of this row
          const index_t ih = oh * p.stride_h - p.pad_t + ki * p.dil_h;
          if (ih < 0 || ih >= p.H) {
            std::fill(d + ow0, d + ow1, 0.f);
            return;
          }
          // ow0 <= a <= b <= ow1: zeros, copied run, zeros.
          const index_t a = std::min(std::max(ow0, cr.lo), ow1);
          const index_t b = std::max(a, std::min(ow1, cr.hi));
          std::fill(d + ow0, d + a, 0.f);
          const float* src = xg + (c * p.H + ih) * p.W + cr.off;
          if (p.stride_w == 1)
            std::memcpy(d + a, src + a, size_t(b - a) * sizeof(float));
          else
            for (index_t ow = a; ow < b; ++ow) d[ow] = src[ow * p.stride_w];
          std::fill(d + b, d + ow1, 0.f);
        });
      }
}

// The adjoint of im2col_rows: adds col back into the image (taps in padding
// are dropped).
void col2im_rows_add(const Conv2dParams& p, const float* col, index_t ld, index_t c0, index_t c1,
                     index_t j0, index_t cols, float* gxg) {
  index_t r = 0;
  for (index_t c = c0; c < c1; ++c)
    for (index_t ki = 0; ki < p.kh; ++ki)
      for (index_t kj = 0; kj < p.kw; ++kj, ++r) {
        const ColRange cr = col_range(p, kj);
        const float* srcr = col + r * ld;
        for_each_row_segment(p, j0, cols, [&](index_t oh, index_t ow0, index_t ow1, index_t o) {
          const index_t ih = oh * p.stride_h - p.pad_t + ki * p.dil_h;
          if (ih < 0 || ih >= p.H) return;
          const index_t a = std::max(ow0, cr.lo), b = std::min(ow1, cr.hi);
          const float* s = srcr + o;
          float* d = gxg + (c * p.H + ih) * p.W + cr.off;
          if (p.stride_w == 1)
            for (index_t ow = a; ow < b; ++ow) d[ow] += s[ow];
          else
            for (index_t ow = a; ow < b; ++ow) d[ow * p.stride_w] += s[ow];
        });
      }
}

// ---------------------------------------------------------------- depthwise

struct DwPlane {
  DwPlaneGeom d;
  index_t Hp = 0, size = 0;
  // Per stride phase: first input column, its place in the phase row, count.
  std::vector<index_t> iw0, dst, count;
};
// align > 1 (a vector width) rounds the phase rows and the plane size up to
// whole vectors, so that planes laid end to end in an aligned buffer start
// every row on a vector boundary.
DwPlane dw_plane(const Conv2dParams& p, index_t align = 1) {
  DwPlane q;
  q.d.OH = p.OH; q.d.OW = p.OW; q.d.kh = p.kh; q.d.kw = p.kw;
  q.d.sh = p.stride_h; q.d.sw = p.stride_w; q.d.dh = p.dil_h; q.d.dw = p.dil_w;
  q.Hp = p.H + p.pad_t + p.pad_b;
  // gy rows padded to whole vectors; the kernels' last vector of a row may
  // run up to one vector past the buffer's end: slack
  const index_t vw = kernels().simd_width;
  q.d.gp = ceil_div(p.OW, vw) * vw;
  // Phase rows at least as long as one tap's whole-vector run, so that the
  // vector stores of neighbouring rows never overlap (small planes would
  // otherwise stall on store-to-load forwarding).
  q.d.L = std::max(ceil_div(p.W + p.pad_l + p.pad_r, p.stride_w),
                   q.d.gp + (p.kw - 1) * p.dil_w / p.stride_w + 1);
  q.d.L = ceil_div(q.d.L, align) * align;
  q.size = ceil_div(q.Hp * p.stride_w * q.d.L + q.d.gp + vw, align) * align;
  const index_t sw = p.stride_w;
  for (index_t ph = 0; ph < sw; ++ph) {
    const index_t iw0 = ((ph - p.pad_l) % sw + sw) % sw;  // (iw0 + pad_l) % sw == ph
    if (iw0 >= p.W) continue;
    q.iw0.push_back(iw0);
    q.dst.push_back(ph * q.d.L + (iw0 + p.pad_l) / sw);
    q.count.push_back((p.W - 1 - iw0) / sw + 1);
  }
  return q;
}

// Copies input row ih into the phase-split buffer (to_buf) or back out.
template <bool to_buf>
void dw_row_copy(const Conv2dParams& p, const DwPlane& q, index_t ih, float* buf, float* row) {
  const index_t sw = p.stride_w;
  float* rb = buf + (ih + p.pad_t) * sw * q.d.L;
  for (size_t f = 0; f < q.iw0.size(); ++f) {
    float* b = rb + q.dst[f];
    const float* r0 = row + q.iw0[f];
    const index_t n = q.count[f];
    if (sw == 1) {
      if (to_buf) std::memcpy(b, r0, size_t(n) * sizeof(float));
      else std::memcpy(row + q.iw0[f], b, size_t(n) * sizeof(float));
    } else {
      float* rw = row + q.iw0[f];
      for (index_t t = 0; t < n; ++t) {
        if (to_buf) b[t] = r0[t * sw];
        else rw[t * sw] = b[t];
      }
    }
  }
}

// One gy plane into rows of pitch q.d.gp (the padding columns stay zero).
void dw_pad_grad(const Conv2dParams& p, const DwPlane& q, const float* g, float* gpad) {
  for (index_t oh = 0; oh < p.OH; ++oh)
    std::memcpy(gpad + oh * q.d.gp, g + oh * p.OW, size_t(p.OW) * sizeof(float));
}

void dw_backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  const index_t mult = p.K / p.C, hw = p.H * p.W, ohw = p.OH * p.OW, taps = p.kh * p.kw;
  const DwPlane q = dw_plane(p);
  const KernelTable& kt = kernels();
  parallel_for(p.N * p.C, 1, [&](index_t b, index_t e) {
    std::vector<float> buf(size_t(q.size)), gpad(size_t(p.OH * q.d.gp), 0.f);
    for (index_t nc = b; nc < e; ++nc) {
      const index_t n = nc / p.C, c = nc % p.C;
      std::fill(buf.begin(), buf.end(), 0.f);
      for (index_t m = 0; m < mult; ++m) {
        const index_t k = c * mult + m;
        dw_pad_grad(p, q, gy + (n * p.K + k) * ohw, gpad.data());
        kt.dw_bwd_input(q.d, gpad.data(), w + k * taps, buf.data());
      }
      float* out = gx + nc * hw;
      for (index_t ih = 0; ih < p.H; ++ih) dw_row_copy<false>(p, q, ih, buf.data(), out + ih * p.W);
    }
  });
}

void dw_backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw) {
  const index_t mult = p.K / p.C, hw = p.H * p.W, ohw = p.OH * p.OW, taps = p.kh * p.kw;
  const index_t lanes = kernels().simd_width;
  const DwPlane q = dw_plane(p);
  const KernelTable& kt = kernels();
  // One job per input channel; images are summed inside it in order, in
  // per-lane partial sums that are added up (in lane order) at the end.
  parallel_for(p.C, 1, [&](index_t b, index_t e) {
    std::vector<float> buf(size_t(q.size), 0.f), acc(size_t(mult * taps * lanes));
    std::vector<float> gpad(size_t(p.OH * q.d.gp), 0.f);
    for (index_t c = b; c < e; ++c) {
      std::fill(acc.begin(), acc.end(), 0.f);
      for (index_t n = 0; n < p.N; ++n) {
        // buf's padding stays zero: only the interior is rewritten per image
        float* xp = const_cast<float*>(x + (n * p.C + c) * hw);  // only read
        for (index_t ih = 0; ih < p.H; ++ih) dw_row_copy<true>(p, q, ih, buf.data(), xp + ih * p.W);
        for (index_t m = 0; m < mult; ++m) {
          const index_t k = c * mult + m;
          dw_pad_grad(p, q, gy + (n * p.K + k) * ohw, gpad.data());
          kt.dw_bwd_weight(q.d, gpad.data(), buf.data(), acc.data() + m * taps * lanes);
        }
      }
      float* out = gw + c * mult * taps;
      for (index_t i = 0; i < mult * taps; ++i) {
        float s = 0.f;
        for (index_t l = 0; l < lanes; ++l) s += acc[size_t(i * lanes + l)];
        out[i] = s;
      }
    }
  });
}

// ---------------------------------------------------------------- GEMM paths

// Columns per im2col tile for grad_input (one image): the slab of `rows`
// floats per column stays around 256 KiB. Depends on the shape only.
index_t input_tile(const Conv2dParams& p, index_t rows) {
  index_t t = std::max<index_t>(64, (index_t(64) * 1024 / std::max<index_t>(rows, 1)) / 16 * 16);
  t = std::min<index_t>(t, 2048);
  return std::min(t, p.OH * p.OW);
}

// W^T per group: wt[g][r][k] = w[g*Kg + k][r], so grad_input's GEMMs read
// both operands without transposition.
std::vector<float> transpose_weight(const Conv2dParams& p, const float* w) {
  const index_t Kg = p.Kg(), rows = p.Cg() * p.kh * p.kw;
  std::vector<float> wt(size_t(p.w_size()));
  for (index_t g = 0; g < p.groups; ++g)
    for (index_t k = 0; k < Kg; ++k)
      for (index_t r = 0; r < rows; ++r)
        wt[size_t((g * rows + r) * Kg + k)] = w[(g * Kg + k) * rows + r];
  return wt;
}

// dY rows [m0, m1) of group g for flattened columns [q0, q0 + T) -> buf[m][tt].
void gather_grad_out(const Conv2dParams& p, const float* gy, index_t g, index_t m0, index_t m1,
                     index_t q0, index_t T, float* buf) {
  const index_t ohw = p.OH * p.OW, Kg = p.Kg();
  for (index_t q = q0; q < q0 + T;) {
    const index_t n = q / ohw, j = q % ohw, len = std::min(ohw - j, q0 + T - q);
    for (index_t m = m0; m < m1; ++m)
      std::memcpy(buf + (m - m0) * T + (q - q0), gy + (n * p.K + g * Kg + m) * ohw + j,
                  size_t(len) * sizeof(float));
    q += len;
  }
}

// Channel blocks per (image, group) so that there are about 2 jobs per thread.
index_t channel_blocks(index_t outer, index_t Cg) {
  const index_t want = 2 * get_num_threads();
  if (outer >= want) return 1;
  return std::min(Cg, ceil_div(want, outer));
}

void gemm_backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, khkw = p.kh * p.kw;
  const index_t rows = Cg * khkw, ohw = p.OH * p.OW, hw = p.H * p.W;
  const std::vector<float> wt = transpose_weight(p, w);
  const KernelTable& kt = kernels();
  const index_t cb = channel_blocks(p.N * G, Cg), cpb = ceil_div(Cg, cb);
  const index_t nblk = ceil_div(Cg, cpb);

  if (ohw < 256 && p.N > 1) {
    // Small planes: one GEMM over several whole images (a wide N), the
    // images' dY rows gathered side by side. Tiles hold whole images, so
    // jobs still write disjoint planes.
    const index_t ipt = std::min(p.N, std::max<index_t>(1, 512 / ohw));
    const index_t T = ipt * ohw, itiles = ceil_div(p.N, ipt);
    const index_t cb2 = channel_blocks(itiles * G, Cg), cpb2 = ceil_div(Cg, cb2);
    const index_t nblk2 = ceil_div(Cg, cpb2);
    parallel_for(itiles * G * nblk2, 1, [&](index_t b, index_t e) {
      std::vector<float> col(size_t(cpb2 * khkw * T)), dy(size_t(Kg * T));
      for (index_t job = b; job < e; ++job) {
        const index_t blk = job % nblk2, rest = job / nblk2;
        const index_t g = rest % G, it = rest / G;
        const index_t c0 = blk * cpb2, c1 = std::min(Cg, c0 + cpb2);
        const index_t n0 = it * ipt, n1 = std::min(p.N, n0 + ipt), cols = (n1 - n0) * ohw;
        gather_grad_out(p, gy, g, 0, Kg, n0 * ohw, cols, dy.data());
        GemmArgs a;
        a.M = (c1 - c0) * khkw; a.N = cols; a.K = Kg;
        a.A = wt.data() + (g * rows + c0 * khkw) * Kg; a.lda = Kg;
        a.B = dy.data(); a.ldb = cols;
        a.C = col.data(); a.ldc = cols;
        kt.sgemm(a);
        for (index_t n = n0; n < n1; ++n) {
          float* gxg = gx + (n * p.C + g * Cg) * hw;
          std::memset(gxg + c0 * hw, 0, size_t((c1 - c0) * hw) * sizeof(float));
          col2im_rows_add(p, col.data() + (n - n0) * ohw, cols, c0, c1, 0, ohw, gxg);
        }
      }
    });
    return;
  }

  if (is_1x1_s1_nopad(p)) {
    // grad_x[n, g] = W_g^T * dY[n, g]: straight into the output.
    const index_t want = 2 * get_num_threads();
    const index_t outer = p.N * G * nblk;
    const index_t ctiles = outer >= want ? 1 : std::min(ceil_div(ohw, 64), ceil_div(want, outer));
    const index_t ct = ceil_div(ohw, ctiles);
    parallel_for(outer * ctiles, 1, [&](index_t b, index_t e) {
      for (index_t job = b; job < e; ++job) {
        const index_t t = job % ctiles, rest = job / ctiles;
        const index_t blk = rest % nblk, ng = rest / nblk;
        const index_t g = ng % G, n = ng / G;
        const index_t c0 = blk * cpb, c1 = std::min(Cg, c0 + cpb);
        const index_t j0 = t * ct, j1 = std::min(ohw, j0 + ct);
        if (j0 >= j1) continue;
        GemmArgs a;
        a.M = c1 - c0; a.N = j1 - j0; a.K = Kg;
        a.A = wt.data() + (g * rows + c0) * Kg; a.lda = Kg;
        a.B = gy + (n * p.K + g * Kg) * ohw + j0; a.ldb = ohw;
        a.C = gx + (n * p.C + g * Cg + c0) * hw + j0; a.ldc = hw;
        kt.sgemm(a);
      }
    });
    return;
  }

  // The tile depends on the shape only: it fixes the order of the col2im adds.
  const index_t tile = input_tile(p, rows);
  const index_t ntiles = ceil_div(ohw, tile);
  parallel_for(p.N * G * nblk, 1, [&](index_t b, index_t e) {
    std::vector<float> col(size_t(cpb * khkw * tile));
    for (index_t job = b; job < e; ++job) {
      const index_t blk = job % nblk, ng = job / nblk;
      const index_t g = ng % G, n = ng / G;
      const index_t c0 = blk * cpb, c1 = std::min(Cg, c0 + cpb);
      float* gxg = gx + (n * p.C + g * Cg) * hw;
      std::memset(gxg + c0 * hw, 0, size_t((c1 - c0) * hw) * sizeof(float));
      for (index_t t = 0; t < ntiles; ++t) {
        const index_t j0 = t * tile, cols = std::min(tile, ohw - j0);
        GemmArgs a;
        a.M = (c1 - c0) * khkw; a.N = cols; a.K = Kg;
        a.A = wt.data() + (g * rows + c0 * khkw) * Kg; a.lda = Kg;
        a.B = gy + (n * p.K + g * Kg) * ohw + j0; a.ldb = ohw;
        a.C = col.data(); a.ldc = cols;
        kt.sgemm(a);
        col2im_rows_add(p, col.data(), cols, c0, c1, j0, cols, gxg);
      }
    }
  });
}

// Columns per grad_weight step. A function of the shape only: it fixes the
// order of the reduction.
index_t weight_tile(index_t rows) {
  const index_t t = (index_t(128) * 1024 / std::max<index_t>(rows, 1)) / 16 * 16;
  return std::clamp<index_t>(t, 256, 1024);
}

// One step of the grad_weight reduction: output positions [j0, j0 + cols)
// of image n0 alone, or whole images [n0, n1) side by side (small planes,
// so that late layers still get long GEMM reductions).
struct WStep {
  index_t n0, n1, j0, cols;
};
std::vector<WStep> weight_steps(const Conv2dParams& p, index_t rows) {
  const index_t T = weight_tile(rows), ohw = p.OH * p.OW;
  std::vector<WStep> st;
  if (2 * ohw >= T) {
    for (index_t n = 0; n < p.N; ++n)
      for (index_t j0 = 0; j0 < ohw; j0 += T) st.push_back({n, n + 1, j0, std::min(T, ohw - j0)});
  } else {
    const index_t ipt = std::max<index_t>(1, T / ohw);
    for (index_t n0 = 0; n0 < p.N; n0 += ipt) {
      const index_t n1 = std::min(p.N, n0 + ipt);
      st.push_back({n0, n1, 0, (n1 - n0) * ohw});
    }
  }
  return st;
}

// im2col of channels [c0, c1) of group g for flattened columns [q0, q0 + T)
// (row stride T).
void im2col_flat(const Conv2dParams& p, const float* x, index_t g, index_t c0, index_t c1,
                 index_t q0, index_t T, float* col) {
  const index_t ohw = p.OH * p.OW, hw = p.H * p.W;
  for (index_t q = q0; q < q0 + T;) {
    const index_t n = q / ohw, j = q % ohw, len = std::min(ohw - j, q0 + T - q);
    const float* xg = x + (n * p.C + g * p.Cg()) * hw;
    if (is_1x1_s1_nopad(p)) {
      for (index_t c = c0; c < c1; ++c)
        std::memcpy(col + (c - c0) * T + (q - q0), xg + c * hw + j, size_t(len) * sizeof(float));
    } else {
      im2col_rows(p, xg, c0, c1, j, len, col + (q - q0), T);
    }
    q += len;
  }
}

void gemm_backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw) {
  const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, khkw = p.kh * p.kw;
  const index_t rows = Cg * khkw, ohw = p.OH * p.OW, hw = p.H * p.W;
  const std::vector<WStep> st = weight_steps(p, rows);
  const index_t steps = index_t(st.size());
  const bool direct_x = is_1x1_s1_nopad(p);
  const KernelTable& kt = kernels();

  // One job: CT[r][m] = dW[g][m0 + m][c0*khkw + r] summed over steps
  // [s0, s1) in order, as col * dY^T: col (or x itself for 1x1) is the A
  // operand, dY (in place when the step is one image) the transposed B.
  auto run = [&](index_t g, index_t m0, index_t m1, index_t c0, index_t c1, index_t s0,
                 index_t s1, float* CT, std::vector<float>& col, std::vector<float>& dy) {
    const index_t r = (c1 - c0) * khkw, mb = m1 - m0;
    for (index_t s = s0; s < s1; ++s) {
      const WStep& w = st[size_t(s)];
      const bool single = w.n1 - w.n0 == 1;
      GemmArgs a;
      a.trans_b = true;
      a.M = r; a.N = mb; a.K = w.cols;
      if (single && direct_x) {
        a.A = x + (w.n0 * p.C + g * Cg + c0) * hw + w.j0; a.lda = hw;
      } else {
        col.resize(size_t(r * w.cols));
        if (single)
          im2col_rows(p, x + (w.n0 * p.C + g * Cg) * hw, c0, c1, w.j0, w.cols, col.data(), w.cols);
        else
          im2col_flat(p, x, g, c0, c1, w.n0 * ohw, w.cols, col.data());
        a.A = col.data(); a.lda = w.cols;
      }
      if (single) {
        a.B = gy + (w.n0 * p.K + g * Kg + m0) * ohw + w.j0; a.ldb = ohw;
      } else {
        dy.resize(size_t(mb * w.cols));
        gather_grad_out(p, gy, g, m0, m1, w.n0 * ohw, w.cols, dy.data());
        a.B = dy.data(); a.ldb = w.cols;
      }
      a.C = CT; a.ldc = mb;
      a.beta = s == s0 ? 0.f : 1.f;
      kt.sgemm(a);
    }
  };

  // Small weights (few outputs to split among threads): a fixed number of
  // slots, each summing a fixed range of steps, added up in slot order.
  const bool slots = index_t(Kg) * rows <= 16384 && steps >= 2;
  if (slots) {
    const index_t S = std::min<index_t>(4, steps), wg = Kg * rows;
    std::vector<float> part(size_t(S * G * wg));
    parallel_for(G * S, 1, [&](index_t b, index_t e) {
      std::vector<float> col, dy;
      for (index_t job = b; job < e; ++job) {
        const index_t s = job % S, g = job / S;
        run(g, 0, Kg, 0, Cg, steps * s / S, steps * (s + 1) / S,
            part.data() + (s * G + g) * wg, col, dy);
      }
    });
    const index_t ws = G * wg;
    parallel_for(ws, 1 << 12, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        const index_t g = i / wg, m = (i % wg) / rows, rr = i % rows;
        const index_t src = g * wg + rr * Kg + m;  // transposed slot layout
        float v = part[size_t(src)];
        for (index_t s = 1; s < S; ++s) v += part[size_t(s * ws + src)];
        gw[i] = v;
      }
    });
    return;
  }

  // Otherwise threads take disjoint blocks of dW (channel blocks, then
  // output-channel blocks); each block's sum runs over all steps in order.
  const index_t want = 2 * get_num_threads();
  index_t cb = G >= want ? 1 : std::min(Cg, ceil_div(want, G));
  cb = std::min(cb, std::max<index_t>(1, rows / 64));
  const index_t cpb = ceil_div(Cg, cb), nc = ceil_div(Cg, cpb);
  index_t mb = G * nc >= want ? 1 : std::min(ceil_div(Kg, 16), ceil_div(want, G * nc));
  const index_t mpb = ceil_div(Kg, mb), nm = ceil_div(Kg, mpb);
  parallel_for(G * nc * nm, 1, [&](index_t b, index_t e) {
    std::vector<float> col, dy, ct;
    for (index_t job = b; job < e; ++job) {
      const index_t mi = job % nm, rest = job / nm;
      const index_t ci = rest % nc, g = rest / nc;
      const index_t c0 = ci * cpb, c1 = std::min(Cg, c0 + cpb);
      const index_t m0 = mi * mpb, m1 = std::min(Kg, m0 + mpb);
      const index_t r = (c1 - c0) * khkw, mbk = m1 - m0;
      ct.resize(size_t(r * mbk));
      run(g, m0, m1, c0, c1, 0, steps, ct.data(), col, dy);
      for (index_t m = 0; m < mbk; ++m) {
        float* dst = gw + (g * Kg + m0 + m) * rows + c0 * khkw;
        for (index_t rr = 0; rr < r; ++rr) dst[rr] = ct[size_t(rr * mbk + m)];
      }
    }
  });
}

// ---------------------------------------------------------------- direct grad_weight

const cpu::WgradDirectKernels& wgrad_kernels(index_t OW) {
  static const cpu::WgradDirectKernels table =
      cpu::isa_table<cpu::WgradDirectKernels>(CONVCORE_PER_ISA(fill_wgrad_direct));
#if CONVCORE_HAVE_X86
  // Rows of 8 (LeNet's second conv) would leave half of every 16-wide vector
  // empty: the 8-wide kernels do the same sums in full vectors.
  static const cpu::WgradDirectKernels narrow = [] {
    cpu::WgradDirectKernels t;
    cpu::avx2::fill_wgrad_direct(t);
    return t;
  }();
  if (table.simd_width == 16 && OW <= 8) return narrow;
#endif
  (void)OW;
  return table;
}

// The direct kernel for 3- and 5-wide kernels of ungrouped convs whose
// output rows fill at least half of their vectors, and channel counts small
// enough that one image's dY stays in L2 while every input channel passes
// over it (the small-CNN layers this is for; the GEMM path is tuned for
// the large ones). The choice depends on the shape (and ISA) only.
bool direct_grad_weight(const Conv2dParams& p) {
  if (p.groups != 1 || !(p.kw == 3 || p.kw == 5)) return false;
  const index_t vw = wgrad_kernels(p.OW).simd_width, nvec = ceil_div(p.OW, vw);
  // Half of the lanes at least, judged at the table's width (so OW >= 8 with
  // AVX-512); dw_plane's pitch must cover the kernel's vectors.
  const index_t tw = kernels().simd_width;
  if (vw > tw || 2 * p.OW < ceil_div(p.OW, tw) * tw) return false;
  // Strided layers get no shared rows and less reuse per load: measured
  // ahead of the GEMM path at 16->32 channels, behind at 64->64.
  const index_t max_ck = p.stride_h == 1 && p.stride_w == 1 ? 64 * 64 : 32 * 32;
  return p.K * p.OH * nvec * vw <= (index_t(1) << 17) && p.C * p.K <= max_ck;
}

// dW as dot products along output positions, without im2col: the x planes
// go into zero-padded, stride-phase-split buffers (as for depthwise), where
// each tap (ki, kj) reads a contiguous run of output columns; lane-wise sums
// over (image, row, vector) stay in registers for a block of images and in
// acc between blocks. Images are taken a few at a time so that their dY and
// padded x planes stay in L2 while every (channel, output-channel block)
// passes over them. Jobs are (slot, c, output-channel block); slots split
// the images into a count fixed by the shape and are summed in slot order at
// the end, so the thread count never changes the order of any sum.
void direct_backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw) {
  const cpu::WgradDirectKernels& wk = wgrad_kernels(p.OW);
  const index_t vw = wk.simd_width, nvec = ceil_div(p.OW, vw), gp = nvec * vw;
  const index_t maxkb = p.kw == 3 ? wk.kb3 : wk.kb5, maxkr = p.kw == 3 ? wk.kr3 : wk.kr5;
  const index_t nkb = ceil_div(p.K, maxkb);
  const index_t taps = p.kh * p.kw, hw = p.H * p.W, ohw = p.OH * p.OW;
  const DwPlane q = dw_plane(p, vw);
  const index_t rowf = p.stride_w * q.d.L;  // floats per padded input row
  const bool pad_gy = p.OW != gp;  // dY rows are read in place when they are whole vectors
  const index_t kplane = pad_gy ? p.OH * gp : ohw, gy_image = p.K * kplane;
  const index_t per_slot = p.C * nkb;
  const index_t S = std::min<index_t>(p.N, std::max<index_t>(1, ceil_div(8, per_slot)));
  // Images per block: up to 8, while their dY and this worker's x planes
  // stay within ~512 KiB (of Zen 4's 1 MiB L2). The block size does not
  // change the order of any sum.
  auto images_per_block = [&](index_t channels) {
    const index_t img_floats = gy_image + channels * q.size;
    return std::clamp<index_t>((index_t(128) << 10) / std::max<index_t>(1, img_floats), 1, 8);
  };
  const index_t kstride = taps * vw;  // acc[s][c][k][ki][kj][lane]: a job's block is contiguous
  std::vector<float> acc(size_t(S * p.C * p.K * kstride), 0.f);
  cpu::WgradDirectArgs base;
  base.rows = p.OH;
  base.nvec = nvec;
  base.tail = p.OW - (nvec - 1) * vw;
  base.gy_pitch = pad_gy ? gp : p.OW;
  base.gy_image = gy_image;
  base.x_image = q.size;
  base.x_row_step = p.stride_h * rowf;
  for (index_t i = 0; i < maxkr; ++i) base.ki_off[i] = i * p.dil_h * rowf;
  base.pair_rows = maxkr > 1 && p.stride_h == p.dil_h;
  for (index_t kj = 0; kj < p.kw; ++kj) {
    const index_t c = kj * p.dil_w;  // padded column of output column 0
    base.kj_off[kj] = (c % p.stride_w) * q.d.L + c / p.stride_w;
  }
  base.acc_k_stride = kstride;

  parallel_for(S * per_slot, 1, [&](index_t b, index_t e) {
    std::vector<float> xstore, gpad;
    for (index_t j = b; j < e;) {
      const index_t s = j / per_slot, jend = std::min(e, (s + 1) * per_slot);
      const index_t c_lo = (j % per_slot) / nkb, c_hi = ((jend - 1) % per_slot) / nkb + 1;
      const index_t B = images_per_block(c_hi - c_lo);
      if (pad_gy) gpad.resize(size_t(B * gy_image));
      // xbuf[(c - c_lo) * B + image]: padding stays zero, only interiors are
      // rewritten. Vector-aligned, so tap kj = 0 never loads across a line.
      xstore.assign(size_t((c_hi - c_lo) * B * q.size + vw), 0.f);
      float* const xbuf = align_up(xstore.data(), vw);
      const index_t n_end = p.N * (s + 1) / S;
      for (index_t n0 = p.N * s / S; n0 < n_end; n0 += B) {
        const index_t nb = std::min(B, n_end - n0);
        for (index_t c = c_lo; c < c_hi; ++c)
          for (index_t i = 0; i < nb; ++i) {
            float* xp = const_cast<float*>(x + ((n0 + i) * p.C + c) * hw);  // only read
            float* dst = xbuf + ((c - c_lo) * B + i) * q.size;
            for (index_t ih = 0; ih < p.H; ++ih) dw_row_copy<true>(p, q, ih, dst, xp + ih * p.W);
          }
        const float* g0 = gy + n0 * p.K * ohw;
        if (pad_gy) {
          for (index_t r = 0; r < nb * p.K * p.OH; ++r)  // r = (image, k, oh)
            std::memcpy(gpad.data() + r * gp, g0 + r * p.OW, size_t(p.OW) * sizeof(float));
          g0 = gpad.data();
        }
        for (index_t jj = j; jj < jend; ++jj) {
          const index_t c = (jj % per_slot) / nkb, k0 = (jj % nkb) * maxkb;
          const index_t kn = std::min(maxkb, p.K - k0);
          cpu::WgradDirectArgs a = base;
          a.images = nb;
          for (index_t k = 0; k < kn; ++k) a.gy[k] = g0 + (k0 + k) * kplane;
          for (index_t ki0 = 0; ki0 < p.kh;) {
            const index_t kr = p.kh - ki0 >= maxkr ? maxkr : 1;
            a.x = xbuf + (c - c_lo) * B * q.size + ki0 * p.dil_h * rowf;
            a.acc = acc.data() + ((s * p.C + c) * p.K + k0) * taps * vw + ki0 * p.kw * vw;
            wk.run(a, int(kn), int(kr), int(p.kw));
            ki0 += kr;
          }
        }
      }
      j = jend;
    }
  });
  // dW[k][c][tap] = sum over slots (in order) of the lanes (in order).
  // (Small weights stay on this thread: a few microseconds of adds are not
  // worth waking the team again.)
  const index_t wsz = p.K * p.C * taps;
  parallel_for(wsz, 1 << 14, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const index_t k = i / (p.C * taps), c = (i / taps) % p.C, t = i % taps;
      float v = 0.f;
      for (index_t s = 0; s < S; ++s) {
        const float* a = acc.data() + (((s * p.C + c) * p.K + k) * taps + t) * vw;
        float t = 0.f;
        for (index_t l = 0; l < vw; ++l) t += a[l];
        v = s == 0 ? t : v + t;
      }
      gw[i] = v;
    }
  });
}

// grad_input of a 3x3 stride-1 conv is a forward 3x3 conv of dY with the
// weights flipped and in/out channels swapped, padding 2 - pad per side, so
// the Winograd forward kernel can do it: on the ResNet's 16- and 32-channel
// layers at batch 32 it takes about half the time of GEMM + col2im. Used
// when the channel counts keep the transforms' cost small against the
// products; the choice depends on the shape only (determinism).
bool winograd_grad_input(const Conv2dParams& p) {
  return p.kh == 3 && p.kw == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
         p.dil_w == 1 && p.groups == 1 && p.pad_t <= 2 && p.pad_b <= 2 && p.pad_l <= 2 &&
         p.pad_r <= 2 && p.C >= 16 && p.K >= 16 && p.OH >= 4 && p.OW >= 4 &&
         p.N * p.OH * p.OW >= 1024;
}

void winograd_backward_input(const Conv2dParams& p, const float* gy, const float* w,
                             float* gx) {
  Conv2dParams q;
  q.N = p.N; q.C = p.K; q.H = p.OH; q.W = p.OW; q.K = p.C;
  q.kh = 3; q.kw = 3;
  q.pad_t = 2 - p.pad_t; q.pad_b = 2 - p.pad_b; q.pad_l = 2 - p.pad_l; q.pad_r = 2 - p.pad_r;
  q.finalize("conv2d_backward");
  std::vector<float> wf(size_t(p.w_size()));  // wf[c][k][2-i][2-j] = w[k][c][i][j]
  for (index_t k = 0; k < p.K; ++k)
    for (index_t c = 0; c < p.C; ++c)
      for (index_t t = 0; t < 9; ++t) wf[size_t((c * p.K + k) * 9 + 8 - t)] = w[(k * p.C + c) * 9 + t];
  conv2d_forward(q, gy, wf.data(), gx, Epilogue(), nullptr, ConvAlgo::Winograd3x3);
}

}  // namespace

void conv2d_backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  if (!gx || p.N == 0) return;
  if (is_depthwise(p))
    dw_backward_input(p, gy, w, gx);
  else if (winograd_grad_input(p))
    winograd_backward_input(p, gy, w, gx);
  else
    gemm_backward_input(p, gy, w, gx);
}

void conv2d_backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                            float* gb) {
  const index_t ohw = p.OH * p.OW;
  if (gb) {
    const auto sum = kernels().sum;
    parallel_for(p.K, 1, [&](index_t b, index_t e) {
      for (index_t k = b; k < e; ++k) {
        double s = 0;  // images summed in order, in double
        for (index_t n = 0; n < p.N; ++n) s += double(sum(ohw, gy + (n * p.K + k) * ohw));
        gb[k] = float(s);
      }
    });
  }
  if (!gw) return;
  if (p.N == 0) {
    std::memset(gw, 0, size_t(p.w_size()) * sizeof(float));
    return;
  }
  if (is_depthwise(p))
    dw_backward_weight(p, gy, x, gw);
  else if (direct_grad_weight(p))
    direct_backward_weight(p, gy, x, gw);
  else
    gemm_backward_weight(p, gy, x, gw);
}

}  // namespace convcore
