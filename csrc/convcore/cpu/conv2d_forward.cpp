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
          kt.conv_pack_b(p, xg, p0, kc, j0, j1 - j0, Bp);
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
