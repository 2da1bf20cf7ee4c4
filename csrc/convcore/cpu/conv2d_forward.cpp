// conv2d forward. The algorithm is chosen in one place (choose_conv_algo):
//   depthwise_direct  groups == C: a vectorised direct kernel per plane
//   gemm1x1 / implicit_gemm
//                     packed SGEMM whose B panels are gathered straight from
//                     the input (no im2col buffer; for 1x1 stride 1 a plain
//                     panel copy), weights pre-packed (PackedConv2d)
//   im2col_gemm       explicit im2col tiles + sgemm (the old general path,
//                     kept as a reference and fallback)
// Work is split into (image, group, column block, row block) jobs chosen so
// that batch 1 keeps every thread busy. K (the reduction) is never split, so
// results do not depend on the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "convcore/conv2d.h"
#include "convcore/conv2d_packed.h"
#include "convcore/dispatch.h"
#include "convcore/im2col.h"
#include "convcore/parallel.h"

namespace convcore {

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Gemm1x1: return "gemm1x1";
    case ConvAlgo::Im2colGemm: return "im2col_gemm";
    case ConvAlgo::Depthwise: return "depthwise_direct";
    case ConvAlgo::Winograd3x3: return "winograd3x3";
    case ConvAlgo::Direct: return "direct";
    case ConvAlgo::ImplicitGemm: return "implicit_gemm";
  }
  return "?";
}

namespace {
bool is_depthwise(const Conv2dParams& p) { return p.groups == p.C && p.groups > 1; }
bool is_1x1(const Conv2dParams& p) { return p.kh == 1 && p.kw == 1; }
}  // namespace

ConvAlgo choose_conv_algo(const Conv2dParams& p) {
  if (is_depthwise(p)) return ConvAlgo::Depthwise;
  if (is_1x1(p)) return ConvAlgo::Gemm1x1;
  return ConvAlgo::ImplicitGemm;
}

void check_conv_algo(const Conv2dParams& p, ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto:
    case ConvAlgo::Im2colGemm:
    case ConvAlgo::ImplicitGemm: return;
    case ConvAlgo::Gemm1x1:
      if (!is_1x1(p)) fail("conv2d", "algorithm 'gemm1x1' needs a 1x1 kernel, got ", p.kh, "x", p.kw);
      return;
    case ConvAlgo::Depthwise:
      if (!is_depthwise(p))
        fail("conv2d", "algorithm 'depthwise_direct' needs groups == in_channels > 1, got groups=",
             p.groups, " for ", p.C, " channels");
      return;
    default:
      fail("conv2d", "algorithm '", conv_algo_name(a), "' is not available on the CPU");
  }
}

void AlignedFloats::resize(index_t n) {
  const size_t bytes = size_t((std::max<index_t>(n, 1) * index_t(sizeof(float)) + 63) / 64 * 64);
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  ptr.reset(p);
  size = n;
}

namespace {

// Per-thread B panel buffer, kept between calls.
float* b_scratch(index_t n) {
  thread_local AlignedFloats buf;
  if (buf.size < n) buf.resize(n);
  return buf.data();
}

// Writes `len` values of column run [jj, jj+len) of packed row k: value
// src(t) for t in [0, len) (src == nullptr: zeros). Panels are NR wide.
struct PanelWriter {
  float* Bp;
  index_t kc, NR;
  template <typename F>
  inline void run(index_t k, index_t jj, index_t len, F&& src) const {
    index_t t = 0;
    while (t < len) {
      const index_t col = jj + t, lane = col % NR;
      const index_t n = std::min(len - t, NR - lane);
      float* d = Bp + (col - lane) * kc + k * NR + lane;
      src(d, t, n);
      t += n;
    }
  }
};

// Packs rows [p0, p0+kc) x columns [j0, j0+nc) of one image-group's implicit
// im2col matrix (row r = (c, ki, kj), column j = (oh, ow)) into NR-column
// panels, zero-padding the last one.
void pack_b_conv(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                 index_t nc, index_t NR, float* Bp) {
  const index_t hw = p.H * p.W;
  const index_t ncp = (nc + NR - 1) / NR * NR;
  const bool plain = is_1x1(p) && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 &&
                     p.pad_l == 0 && p.OW == p.W;
  if (plain) {  // column j reads x[c][j]: copy NR-float slices
    for (index_t jp = 0; jp < nc; jp += NR) {
      const index_t nr = std::min(NR, nc - jp);
      float* dst = Bp + jp * kc;
      const float* src = xg + p0 * hw + j0 + jp;
      if (nr == NR) {
        for (index_t k = 0; k < kc; ++k, dst += NR, src += hw)
          for (index_t t = 0; t < NR; ++t) dst[t] = src[t];
      } else {
        for (index_t k = 0; k < kc; ++k, dst += NR, src += hw) {
          for (index_t t = 0; t < nr; ++t) dst[t] = src[t];
          for (index_t t = nr; t < NR; ++t) dst[t] = 0.f;
        }
      }
    }
    return;
  }
  const PanelWriter pw{Bp, kc, NR};
  const index_t khw = p.kh * p.kw;
  auto zeros = [](float* d, index_t, index_t n) { for (index_t i = 0; i < n; ++i) d[i] = 0.f; };
  for (index_t k = 0; k < kc; ++k) {
    const index_t r = p0 + k, c = r / khw, ki = (r % khw) / p.kw, kj = r % p.kw;
    const float* xc = xg + c * hw;
    const index_t off_w = kj * p.dil_w - p.pad_l;
    // ow whose tap iw = ow*sw + off_w is inside [0, W)
    const index_t a = off_w >= 0 ? 0 : (-off_w + p.stride_w - 1) / p.stride_w;
    const index_t b = p.W - off_w <= 0 ? 0 : (p.W - off_w - 1) / p.stride_w + 1;
    index_t jj = 0, oh = j0 / p.OW, ow = j0 % p.OW;
    while (jj < nc) {
      const index_t seg = std::min(p.OW - ow, nc - jj);
      const index_t ih = oh * p.stride_h - p.pad_t + ki * p.dil_h;
      if (ih < 0 || ih >= p.H) {
        pw.run(k, jj, seg, zeros);
      } else {
        const index_t lo = std::clamp(a, ow, ow + seg), hi = std::clamp(b, lo, ow + seg);
        pw.run(k, jj, lo - ow, zeros);
        const float* xr = xc + ih * p.W + off_w;
        if (p.stride_w == 1) {
          const float* s = xr + lo;
          pw.run(k, jj + lo - ow, hi - lo, [s](float* d, index_t t, index_t n) {
            for (index_t i = 0; i < n; ++i) d[i] = s[t + i];
          });
        } else {
          const index_t sw = p.stride_w;
          const float* s = xr + lo * sw;
          pw.run(k, jj + lo - ow, hi - lo, [s, sw](float* d, index_t t, index_t n) {
            for (index_t i = 0; i < n; ++i) d[i] = s[(t + i) * sw];
          });
        }
        pw.run(k, jj + hi - ow, ow + seg - hi, zeros);
      }
      jj += seg;
      ow = 0;
      ++oh;
    }
    for (index_t j = nc; j < ncp; ++j) Bp[(j - j % NR) * kc + k * NR + j % NR] = 0.f;
  }
}

// Job split over columns (panels of NR) and rows (panels of MR) of each
// image-group's output: minimise the slowest thread's work, counting the
// B packing of each job as ~24 extra rows.
struct Split { index_t cb, mb; };
Split choose_split(index_t ng, index_t panels, index_t mpanels, index_t NR, index_t MR,
                   index_t max_cols) {
  const index_t T = get_num_threads();
  Split best{1, 1};
  double best_cost = 1e300;
  const index_t min_cb = std::max<index_t>(1, (panels * NR + max_cols - 1) / max_cols);
  for (index_t mb = 1; mb <= std::min<index_t>(mpanels, 8); ++mb)
    for (index_t cb = min_cb; cb <= panels; ++cb) {
      const index_t jobs = ng * cb * mb;
      const index_t rounds = (jobs + T - 1) / T;
      const index_t cols = (panels + cb - 1) / cb * NR, rows = (mpanels + mb - 1) / mb * MR;
      const double cost = double(rounds) * cols * (rows + 24) + 1e-3 * double(jobs);
      if (cost < best_cost) { best_cost = cost; best = {cb, mb}; }
      if (jobs >= 8 * T && cb > min_cb) break;
    }
  return best;
}

void run_depthwise(const Conv2dParams& p, const float* x, const float* w, float* y,
                   const Epilogue& ep, const float* residual) {
  const KernelTable& kt = kernels();
  // At least ~64K multiply-adds per worker: below that, waking a thread
  // costs more than it saves.
  const index_t per_plane = std::max<index_t>(1, p.OH * p.OW * p.kh * p.kw);
  const index_t grain = std::max<index_t>(1, (index_t(1) << 16) / per_plane);
  parallel_for(p.N * p.K, grain, [&](index_t b, index_t e) {
    kt.depthwise(p, x, w, ep.bias, y, residual, ep.clamp(), ep.lo, ep.hi, b, e);
  });
}

// The explicit im2col + sgemm path; a residual is added in a second pass.
void run_im2col_gemm(const Conv2dParams& p, const float* x, const float* w, float* y,
                     const Epilogue& ep_in, const float* residual) {
  const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
  const index_t rows = Cg * p.kh * p.kw, ohw = p.OH * p.OW, hw = p.H * p.W;
  const index_t nr = kernels().gemm_nr;
  index_t tile = std::max<index_t>(nr, (index_t(64) * 1024 / std::max<index_t>(rows, 1)) / nr * nr);
  tile = std::min<index_t>(std::min<index_t>(tile, 1024), (ohw + nr - 1) / nr * nr);
  const index_t ntiles = (ohw + tile - 1) / tile;
  Epilogue ep = ep_in;
  if (residual) {  // clamp after the residual pass
    ep = Epilogue();
    ep.bias = ep_in.bias;
  }
  const KernelTable& kt = kernels();
  parallel_for(p.N * G * ntiles, 1, [&](index_t b, index_t e) {
    std::vector<float> col(size_t(rows * tile));
    for (index_t job = b; job < e; ++job) {
      const index_t t = job % ntiles, ng = job / ntiles, g = ng % G, n = ng / G;
      const index_t j0 = t * tile, cols = std::min(tile, ohw - j0);
      im2col_tile(p, x + (n * p.C + g * Cg) * hw, j0, cols, col.data());
      GemmArgs a;
      a.M = Kg; a.N = cols; a.K = rows;
      a.A = w + g * Kg * rows; a.lda = rows;
      a.B = col.data(); a.ldb = cols;
      a.C = y + (n * p.K + g * Kg) * ohw + j0; a.ldc = ohw;
      a.ep = ep;
      if (ep.bias) a.ep.bias = ep.bias + g * Kg;
      kt.sgemm(a);
    }
  });
  if (residual) {
    parallel_for(p.y_size(), 1 << 14, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        float r = y[i] + residual[i];
        if (ep_in.clamp()) r = std::min(std::max(r, ep_in.lo), ep_in.hi);
        y[i] = r;
      }
    });
  }
}

}  // namespace

struct ConvRunner {
  // Implicit GEMM over the packed weights.
  static void gemm(const PackedConv2d& pk, const Conv2dParams& p, const float* x, float* y,
                   const Epilogue& ep, const float* residual) {
    const KernelTable& kt = kernels();
    const index_t NR = kt.gemm_nr, MR = pk.mr_, KC = pk.kc_;
    const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
    const index_t rows = Cg * p.kh * p.kw, ohw = p.OH * p.OW, hw = p.H * p.W;
    const index_t panels = (ohw + NR - 1) / NR, mpanels = pk.mpad_ / MR;
    const index_t max_cols = std::max<index_t>(NR, (index_t(512) * 256 / KC) / NR * NR);
    const Split sp = choose_split(p.N * G, panels, mpanels, NR, MR, max_cols);
    const index_t cpj = (panels + sp.cb - 1) / sp.cb, mpj = (mpanels + sp.mb - 1) / sp.mb;
    const index_t MC = std::max<index_t>(MR, (index_t(256) * 1024 / (KC * 4)) / MR * MR);
    const float* A = pk.a_.data();
    parallel_for(p.N * G * sp.cb * sp.mb, 1, [&](index_t b, index_t e) {
      float* Bp = b_scratch(KC * cpj * NR);
      for (index_t job = b; job < e; ++job) {
        const index_t mbi = job % sp.mb, cbi = (job / sp.mb) % sp.cb;
        const index_t ng = job / (sp.mb * sp.cb), g = ng % G, n = ng / G;
        const index_t j0 = cbi * cpj * NR, j1 = std::min(ohw, j0 + cpj * NR);
        const index_t m0 = mbi * mpj * MR, m1 = std::min(Kg, m0 + mpj * MR);
        if (j0 >= j1 || m0 >= m1) continue;
        const float* xg = x + (n * p.C + g * Cg) * hw;
        const index_t cbase = (n * p.K + g * Kg) * ohw;
        for (index_t p0 = 0; p0 < rows; p0 += KC) {
          const index_t kc = std::min(KC, rows - p0);
          pack_b_conv(p, xg, p0, kc, j0, j1 - j0, NR, Bp);
          const float* Ablk = A + g * pk.mpad_ * rows + p0 * pk.mpad_;
          for (index_t i0 = m0; i0 < m1; i0 += MC) {
            const index_t mc = std::min(MC, m1 - i0);
            GemmTileOut o;
            o.beta = p0 == 0 ? 0.f : 1.f;
            o.final = p0 + kc == rows;
            o.bias = ep.bias ? ep.bias + g * Kg + i0 : nullptr;
            o.residual = residual ? residual + cbase + i0 * ohw + j0 : nullptr;
            o.ldr = ohw;
            o.clamp = ep.clamp();
            o.lo = ep.lo;
            o.hi = ep.hi;
            kt.gemm_block(kc, mc, j1 - j0, Ablk + i0 * kc, Bp, y + cbase + i0 * ohw + j0, ohw, o);
          }
        }
      }
    });
  }
};

PackedConv2d::PackedConv2d(const Conv2dParams& geom, const float* w, ConvAlgo algo)
    : geom_(geom), forced_(algo) {
  const index_t nw = geom.w_size();
  w_.assign(w, w + nw);
  if (algo == ConvAlgo::Depthwise || algo == ConvAlgo::Im2colGemm ||
      (algo == ConvAlgo::Auto && is_depthwise(geom)))
    return;
  const KernelTable& kt = kernels();
  mr_ = kt.gemm_mr;
  kc_ = kt.gemm_kc;
  const index_t Kg = geom.Kg(), G = geom.groups, rows = geom.Cg() * geom.kh * geom.kw;
  mpad_ = (Kg + mr_ - 1) / mr_ * mr_;
  a_.resize(G * mpad_ * rows);
  const index_t nkb = (rows + kc_ - 1) / kc_;
  parallel_for(G * nkb, 1, [&](index_t b, index_t e) {
    for (index_t job = b; job < e; ++job) {
      const index_t g = job / nkb, p0 = (job % nkb) * kc_, kc = std::min(kc_, rows - p0);
      kt.gemm_pack_a(w + g * Kg * rows, rows, false, 0, Kg, p0, kc,
                     a_.data() + g * mpad_ * rows + p0 * mpad_);
    }
  });
}

ConvAlgo PackedConv2d::algo_for(const Conv2dParams& p) const {
  return forced_ == ConvAlgo::Auto ? choose_conv_algo(p) : forced_;
}

void PackedConv2d::run(const Conv2dParams& p, const float* x, float* y, const Epilogue& ep,
                       const float* residual) const {
  if (p.C != geom_.C || p.K != geom_.K || p.kh != geom_.kh || p.kw != geom_.kw ||
      p.groups != geom_.groups)
    fail("conv2d", "input does not match the packed convolution (", p.C, " channels, expected ",
         geom_.C, ")");
  if (p.N == 0) return;
  const ConvAlgo a = algo_for(p);
  check_conv_algo(p, a);
  switch (a) {
    case ConvAlgo::Depthwise: run_depthwise(p, x, w_.data(), y, ep, residual); break;
    case ConvAlgo::Im2colGemm: run_im2col_gemm(p, x, w_.data(), y, ep, residual); break;
    default: ConvRunner::gemm(*this, p, x, y, ep, residual); break;
  }
}

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep, const float* residual, ConvAlgo algo) {
  check_conv_algo(p, algo);
  if (p.N == 0) return;
  const ConvAlgo a = algo == ConvAlgo::Auto ? choose_conv_algo(p) : algo;
  if (a == ConvAlgo::Depthwise) return run_depthwise(p, x, w, y, ep, residual);
  if (a == ConvAlgo::Im2colGemm) return run_im2col_gemm(p, x, w, y, ep, residual);
  PackedConv2d(p, w, a).run(p, x, y, ep, residual);
}

}  // namespace convcore
