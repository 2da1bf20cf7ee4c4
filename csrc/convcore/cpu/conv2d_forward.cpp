// conv2d forward. The algorithm is chosen in one place (choose_conv_algo):
//   depthwise_direct  groups == C: a vectorised direct kernel per plane
//   gemm1x1 / implicit_gemm
//                     packed SGEMM whose B panels are gathered straight from
//                     the input (no im2col buffer; for 1x1 stride 1 a plain
//                     panel copy), weights pre-packed (PackedConv2d)
//   shifted_gemm      the same packed weights times B rows read in place
//                     from a zero-padded (phase-split for strides) input:
//                     no packing of B at all (ShiftedRunner; 1x1 stride-1
//                     layers use it with x itself)
//   im2col_gemm       explicit im2col tiles + sgemm (the old general path,
//                     kept as a reference and fallback)
// Work is split into (image, group, column block, row block) jobs chosen so
// that batch 1 keeps every thread busy. K (the reduction) is never split, so
// results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "convcore/conv2d.h"
#include "convcore/conv2d_packed.h"
#include "convcore/cpu/job_pool.h"
#include "convcore/dispatch.h"
#include "convcore/im2col.h"
#include "convcore/parallel.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace convcore {

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Gemm1x1: return "gemm1x1";
    case ConvAlgo::Im2colGemm: return "im2col_gemm";
    case ConvAlgo::Depthwise: return "depthwise_direct";
    case ConvAlgo::Winograd3x3: return "winograd3x3";
    case ConvAlgo::Winograd3x3F4: return "winograd3x3_f4";
    case ConvAlgo::Direct: return "direct";
    case ConvAlgo::ImplicitGemm: return "implicit_gemm";
    case ConvAlgo::ShiftedGemm: return "shifted_gemm";
  }
  return "?";
}

namespace {
bool is_depthwise(const Conv2dParams& p) { return p.groups == p.C && p.groups > 1; }
bool is_1x1(const Conv2dParams& p) { return p.kh == 1 && p.kw == 1; }
bool winograd_ok(const Conv2dParams& p) {
  return p.kh == 3 && p.kw == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
         p.dil_w == 1 && p.groups == 1;
}
// Auto picks Winograd from the geometry alone (so weights can be packed
// before the input size is known): enough channels on both sides for the
// transforms to be cheap next to the 16 GEMMs. Below 64 the shifted GEMM
// is faster (measured at 14-112 pixels square, 16-32 channels: 1.1-2x).
bool winograd_preferred(const Conv2dParams& p) {
  return winograd_ok(p) && p.C >= 64 && p.K >= 64;
}
// F(4x4) over F(2x2) from 14-wide planes (measured 1.1-1.6x faster on the
// ResNet/VGG layers of 14-224 pixels); on 7x7 planes its 6x6 tiles waste
// too much (2x slower).
// Its weights take 36 floats per channel pair (F(2x2): 16, direct: 9), so
// only up to 128x128 channels: on ResNet-50's 256-channel layers it would
// add 57 MB (peak RSS above onnxruntime's) for 2.5% of the run time.
bool winograd_f4_channels(const Conv2dParams& p) { return p.C * p.K <= 128 * 128; }
bool winograd_f4_preferred(const Conv2dParams& p) {
  return p.OW >= 14 && p.OH >= 14 && winograd_f4_channels(p);
}
// Width of the shifted GEMM's (padded, per-phase) input rows. Its flat
// output has this many columns per row, of which OW are kept. Strided:
// wide enough that every valid output's taps stay inside its own row.
// Stride 1: a tap may run past the row's end into the next row's first
// pad_l columns, which are zeros in every row (and the slack after the
// last), so the right padding shares them: a 3x3 pad-1 layer computes
// W + 1 columns per row instead of W + 2 (SqueezeNet's 27x27 expands: 3.6%
// fewer multiply-adds; 55x55 1.8%).
index_t shifted_width(const Conv2dParams& p) {
  const index_t sw = p.stride_w;
  if (sw == 1)
    return std::max({p.W + p.pad_l, p.OW, p.OW + (p.kw - 1) * p.dil_w - p.pad_l});
  return std::max((p.W + p.pad_l + p.pad_r + sw - 1) / sw, p.OW + (p.kw - 1) * p.dil_w / sw);
}
double shifted_waste(const Conv2dParams& p) {
  return double(shifted_width(p)) / double(std::max<index_t>(p.OW, 1));
}
// Shifted GEMM over implicit GEMM where it measured faster: it computes the
// dropped padding columns (waste) but packs nothing, while implicit GEMM's
// B packing costs about 24 output channels' worth of work per column
// (choose_split's model), i.e. a lot for layers with few output channels.
// Strided layers also pay a gather into their phase planes.
bool shifted_preferred(const Conv2dParams& p) {
  const bool strided = p.stride_h > 1 || p.stride_w > 1;
  const double pack = 1.0 + 24.0 / double(std::max<index_t>(p.Kg(), 1));
  return shifted_waste(p) * (strided ? 1.04 : 1.0) <= pack;
}
}  // namespace

// Stride-1 1x1 layers read x in place (shifted GEMM) unless the CPU packs
// them (KernelTable::shifted_1x1) and the channel counts pay for the
// packing. 1 thread, Xeon, in place vs packed: SqueezeNet's 128->16 55x55
// 0.056 vs 0.087 ms, 16->64 0.040 vs 0.047; on the 7-row tiles (<= 196
// pixels, each job packs its pixels for every input channel) 384->64 14x14
// 0.075 vs 0.092, 576->96 0.170 vs 0.181, 1024->128 level, 1024->256 0.79
// vs 0.73; larger planes 256->64 56x56 0.99-1.28 vs 0.82-0.91, 512->128
// 28x28 1.28 vs 1.02.
bool in_place_1x1(const Conv2dParams& p) {
  return kernels().shifted_1x1 || p.Cg() < 64 || p.Kg() < 64 ||
         (p.OH * p.OW <= 196 && p.Kg() < 256);
}

// A Winograd-shaped layer on a plane of at most 49 outputs runs as an
// implicit GEMM on the 7-row tiles where the CPU says so
// (KernelTable::winograd_small_direct): F(2x2)'s 16 GEMMs over so few
// tiles stream 16/9 of the weights for 2.25x fewer multiply-adds, and a
// core with two 512-bit FMA units waits on the weights instead (Xeon, 1
// thread, ResNet-50's 512-channel 7x7 layers in the model: 2.72-2.78 ->
// 2.22-2.32 ms).
bool small_plane_direct(const Conv2dParams& p) {
  const KernelTable& kt = kernels();
  const index_t ohw = p.OH * p.OW;
  return kt.winograd_small_direct && ohw > 0 && ohw <= 49 &&
         ohw % 7 == 0 && p.Kg() >= 2 * kt.gemm_nr;
}

ConvAlgo choose_conv_algo(const Conv2dParams& p) {
  if (is_depthwise(p)) return ConvAlgo::Depthwise;
  if (is_1x1(p)) return ConvAlgo::Gemm1x1;
  if (winograd_preferred(p)) {
    if (small_plane_direct(p)) return ConvAlgo::ImplicitGemm;
    return winograd_f4_preferred(p) ? ConvAlgo::Winograd3x3F4 : ConvAlgo::Winograd3x3;
  }
  // Sizes are unknown when weights are packed ahead of the input (H = 0):
  // both GEMM paths share that packing, the run picks.
  if (p.OW > 0 && shifted_preferred(p)) return ConvAlgo::ShiftedGemm;
  return ConvAlgo::ImplicitGemm;
}

void check_conv_algo(const Conv2dParams& p, ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto:
    case ConvAlgo::Im2colGemm:
    case ConvAlgo::ImplicitGemm:
    case ConvAlgo::ShiftedGemm: return;
    case ConvAlgo::Gemm1x1:
      if (!is_1x1(p)) fail("conv2d", "algorithm 'gemm1x1' needs a 1x1 kernel, got ", p.kh, "x", p.kw);
      return;
    case ConvAlgo::Winograd3x3:
    case ConvAlgo::Winograd3x3F4:
      if (!winograd_ok(p))
        fail("conv2d", "algorithm '", conv_algo_name(a),
             "' needs a 3x3 kernel, stride 1, dilation 1 and groups 1, got ", p.kh, "x", p.kw,
             " stride ", p.stride_h, "x", p.stride_w,
             " dilation ", p.dil_h, "x", p.dil_w, " groups ", p.groups);
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

// Job number -> (image or image-group, column block, channel block) of a
// driver with `ng` images x `cb` column blocks x `mb` channel blocks, in the
// order weights_outer chose.
struct JobCoord { index_t ng, cbi, mbi; };
inline JobCoord job_coord(index_t job, index_t ng, index_t cb, index_t mb, bool wouter) {
  if (wouter) return {job / cb % ng, job % cb, job / (ng * cb)};
  return {job / (mb * cb), job / mb % cb, job % mb};
}

// Block i of n items cut in `parts` blocks whose sizes differ by at most
// one: [first(i), first(i + 1)).
inline index_t block_first(index_t i, index_t n, index_t parts) { return i * n / parts; }

// Job split over columns (panels of NR) and rows (panels of MR) of each
// image-group's output: minimise the slowest thread's work, counting the
// B packing of each job as ~pack_rows extra rows. Blocks of either differ
// by at most one panel, and a few more column blocks are then tried,
// counted exactly (jobs dealt in contiguous ranges, as run_jobs does):
// uneven blocks balance where equal ones cannot. ResNet-50's 3x3 stride-2
// 128x56x56 layer has 26 column panels, cut in 13 jobs of 2 (7 and 6 on 2
// threads) before, now in 14 of 1-2 (13 panels each): 1.39 -> 1.33 ms at
// 2 threads. (The exact count over all candidates, not only these, chose
// fewer, larger jobs for many layers: level or worse in the models.)
struct Split { index_t cb, mb; };
Split choose_split(index_t ng, index_t panels, index_t mpanels, index_t NR, index_t MR,
                   index_t max_cols, double pack_rows, bool wouter) {
  const index_t T = get_num_threads();
  Split best{1, 1};
  double best_cost = 1e300;
  const index_t min_cb = std::max<index_t>(1, (panels * NR + max_cols - 1) / max_cols);
  for (index_t mb = 1; mb <= std::min<index_t>(mpanels, 8); ++mb)
    for (index_t cb = min_cb; cb <= panels; ++cb) {
      const index_t jobs = ng * cb * mb;
      const index_t rounds = (jobs + T - 1) / T;
      const index_t cols = (panels + cb - 1) / cb * NR, rows = (mpanels + mb - 1) / mb * MR;
      // Stealing at the ends of the dealt ranges (run_jobs) balances best
      // with a few jobs per thread.
      const double few = jobs < 4 * T && cols > 4 * NR ? 1.15 : 1.0;
      const double cost = few * double(rounds) * cols * (rows + pack_rows) + 1e-3 * double(jobs);
      if (cost < best_cost) { best_cost = cost; best = {cb, mb}; }
      if (jobs >= 8 * T && cb > min_cb) break;
    }
  // The slowest thread's work for cb column blocks, exactly.
  auto slowest = [&](index_t cb) {
    const index_t mb = best.mb, jobs = ng * cb * mb;
    double worst = 0;
    for (index_t t = 0; t < T; ++t) {
      double c = 0;
      for (index_t j = jobs * t / T; j < jobs * (t + 1) / T; ++j) {
        const JobCoord jc = job_coord(j, ng, cb, mb, wouter);
        const index_t cols =
            (block_first(jc.cbi + 1, panels, cb) - block_first(jc.cbi, panels, cb)) * NR;
        const index_t rows =
            (block_first(jc.mbi + 1, mpanels, mb) - block_first(jc.mbi, mpanels, mb)) * MR;
        c += double(cols) * (double(rows) + pack_rows);
      }
      worst = std::max(worst, c);
    }
    return worst;
  };
  const index_t cb0 = best.cb;
  double w = slowest(cb0);
  for (index_t cb = cb0 + 1; cb <= std::min(panels, cb0 + T); ++cb) {
    const double wc = slowest(cb);
    if (wc < w * 0.97) {  // clearly better balanced
      w = wc;
      best.cb = cb;
    }
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
  const index_t total = p.N * p.K;
  if (total < 2 * grain || get_num_threads() == 1) {
    DenormalGuard g;
    kt.depthwise(p, x, w, ep.bias, y, residual, ep.clamp(), ep.lo, ep.hi, 0, total);
    return;
  }
  // ~8 chunks per thread, claimed dynamically (see run_jobs), in multiples
  // of 16 planes: the channel-interleaved kernel fills its vector lanes
  // with consecutive channels of one chunk.
  index_t chunk = std::max<index_t>(grain, total / (8 * get_num_threads()));
  chunk = (chunk + 15) / 16 * 16;
  run_jobs((total + chunk - 1) / chunk, [&](index_t c) {
    kt.depthwise(p, x, w, ep.bias, y, residual, ep.clamp(), ep.lo, ep.hi, c * chunk,
                 std::min(total, (c + 1) * chunk));
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

// run_jobs deals contiguous job ranges to the threads, so the order of a
// driver's jobs decides what each core keeps in its cache: channel blocks
// outer where the weights outweigh the input (each core streams its share
// of the weights; ResNet-50's 14x14 layers on 2 threads 1.2-1.4x), column
// blocks outer otherwise (each core reads the rows the previous layer
// wrote on it: SqueezeNet, MobileNet).
inline bool weights_outer(const Conv2dParams& p, index_t weight_floats) {
  return weight_floats > p.N * p.C * p.H * p.W;
}

// The jobs of a packed-weight conv GEMM (implicit and shifted): per image-
// group, blocks of output columns (NR-wide panels) x blocks of output
// channels (MR-row panels), sized by choose_split; MC rows per A block.
struct GemmJobs {
  index_t NR, MR, Kg, ncols, cb, mb, cpj, mpj, MC, count;
  index_t np_ = 0, mp_ = 0;  // column and channel panels
  bool wouter = false;  // channel blocks outermost (weights_outer)
  struct Job {
    index_t ng, j0, j1, m0, m1;  // image-group, columns [j0, j1), rows [m0, m1)
    bool empty() const { return j0 >= j1 || m0 >= m1; }
  };

  GemmJobs(const PackedConv2d& pk, const Conv2dParams& p, index_t ncols_, index_t NR_,
           double pack_rows = 24)
      : NR(NR_), MR(pk.mr_), Kg(p.Kg()), ncols(ncols_) {
    const index_t ngroups = p.N * p.groups;
    wouter = weights_outer(p, p.K * p.Cg() * p.kh * p.kw);
    const index_t KC = pk.kc_, panels = (ncols + NR - 1) / NR, mpanels = pk.mpad_ / MR;
    const index_t max_cols = std::max<index_t>(NR, (index_t(512) * 256 / KC) / NR * NR);
    const index_t key[7] = {ngroups, panels, mpanels, NR, max_cols, index_t(pack_rows * 16),
                            get_num_threads() * 2 + (wouter ? 1 : 0)};
    {
      std::lock_guard<std::mutex> g(pk.split_mu_);
      if (std::equal(key, key + 7, pk.split_key_)) {
        cb = pk.split_cb_;
        mb = pk.split_mb_;
      } else {
        const Split sp = choose_split(ngroups, panels, mpanels, NR, MR, max_cols, pack_rows, wouter);
        cb = sp.cb;
        mb = sp.mb;
        std::copy(key, key + 7, pk.split_key_);
        pk.split_cb_ = cb;
        pk.split_mb_ = mb;
      }
    }
    cpj = (panels + cb - 1) / cb;  // the most panels in a block
    mpj = (mpanels + mb - 1) / mb;
    np_ = panels;
    mp_ = mpanels;
    MC = std::max<index_t>(MR, (index_t(256) * 1024 / (KC * 4)) / MR * MR);
    count = ngroups * cb * mb;
  }

  Job at(index_t job) const {
    const JobCoord c = job_coord(job, count / (cb * mb), cb, mb, wouter);
    Job j;
    j.ng = c.ng;
    j.j0 = block_first(c.cbi, np_, cb) * NR;
    j.j1 = std::min(ncols, block_first(c.cbi + 1, np_, cb) * NR);
    j.m0 = block_first(c.mbi, mp_, mb) * MR;
    j.m1 = std::min(Kg, block_first(c.mbi + 1, mp_, mb) * MR);
    return j;
  }
};

struct ConvRunner {
  // Implicit GEMM over the packed weights.
  static void gemm(const PackedConv2d& pk, const Conv2dParams& p, const float* x, float* y,
                   const Epilogue& ep, const float* residual) {
    const KernelTable& kt = kernels();
    const index_t KC = pk.kc_;
    const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
    const index_t rows = Cg * p.kh * p.kw, ohw = p.OH * p.OW, hw = p.H * p.W;
    // Narrow panels only where the wide ones would waste over 20% of the
    // columns: the narrow kernel runs ~12% below the wide one (measured).
    index_t NR = kt.gemm_nr;
    auto block = kt.gemm_block;
    auto pack_b = kt.conv_pack_b;
    if (kt.gemm_nr_small) {
      const index_t ns = kt.gemm_nr_small;
      const index_t wide = (ohw + NR - 1) / NR * NR, narrow = (ohw + ns - 1) / ns * ns;
      if (wide * 4 > narrow * 5) {
        NR = ns;
        block = kt.gemm_block_small;
        pack_b = kt.conv_pack_b_small;
      }
    }
    const GemmJobs jobs(pk, p, ohw, NR);
    const index_t MC = jobs.MC;
    const float* A = pk.a_.data();
    run_jobs(jobs.count, [&](index_t job) {
      float* Bp = b_scratch(KC * jobs.cpj * NR);
      {
        const GemmJobs::Job jb = jobs.at(job);
        if (jb.empty()) return;
        const index_t g = jb.ng % G, n = jb.ng / G, j0 = jb.j0, j1 = jb.j1, m0 = jb.m0,
                      m1 = jb.m1;
        const float* xg = x + (n * p.C + g * Cg) * hw;
        const index_t cbase = (n * p.K + g * Kg) * ohw;
        for (index_t p0 = 0; p0 < rows; p0 += KC) {
          const index_t kc = std::min(KC, rows - p0);
          pack_b(p, xg, p0, kc, j0, j1 - j0, Bp);
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
            block(kc, mc, j1 - j0, Ablk + i0 * kc, Bp, y + cbase + i0 * ohw + j0, ohw, o);
          }
        }
      }
    });
  }
};

// Small output planes (7x7, 14x14): C^T = X^T W^T, the pixels as GEMM rows
// in 7-row tiles (49 and 196 fill them exactly, where 32-column panels
// waste 23% / 12%) and the output channels as vector columns. The result is
// transposed back with the epilogue.
struct SmallPlaneRunner {
  static bool applies(const KernelTable& kt, const Conv2dParams& p) {
    const index_t ohw = p.OH * p.OW;
    return kt.gemm_block_rows7 && ohw % 7 == 0 && ohw <= 196 && p.Kg() >= 2 * kt.gemm_nr;
  }

  static void run(const PackedConv2d& pk, const Conv2dParams& p, const float* x, float* y,
                  const Epilogue& ep, const float* residual) {
    const KernelTable& kt = kernels();
    const index_t NR = kt.gemm_nr, KC = pk.kc_;
    const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
    const index_t rows = Cg * p.kh * p.kw, ohw = p.OH * p.OW, hw = p.H * p.W;
    const float* Bt = pk.transposed_weights();
    const index_t npad = pk.bt_npad_, panels = npad / NR;
    // Pixel panels: for 1x1 kernels each job packs its own (a plain copy,
    // cheap); otherwise a first pass packs every (image, group, k block)
    // once, shared by all channel blocks.
    const bool shared = p.kh * p.kw > 1;
    // Channel blocks: at least 4 jobs per thread where the channels allow;
    // 1x1s one per thread, as each of their jobs packs the pixels it covers
    // for every input channel and more channel blocks repeat that (2
    // threads, 7x7 planes, interleaved A/B: 1152->192 0.145 -> 0.114 ms,
    // 320->256 0.057 -> 0.043; 1 thread 1152->192 0.232 -> 0.211).
    const index_t T = get_num_threads();
    const index_t JPT = shared ? 4 : 1;
    index_t cb = std::min<index_t>(panels, std::max<index_t>(1, (JPT * T + p.N * G - 1) / (p.N * G)));
    index_t cpj = (panels + cb - 1) / cb;
    cb = (panels + cpj - 1) / cpj;
    const index_t ohwp = (ohw + 6) / 7 * 7;
    // ...and blocks of pixel tiles when the channel blocks alone leave
    // threads idle or unevenly loaded (e.g. 3 blocks on 2 threads).
    const index_t ptiles = ohwp / 7;
    index_t pb = 1;
    // A 1x1 whose channel panels do not split evenly over the threads (5 on
    // 2: 3 + 2) splits its pixel tiles instead where that is more even (7
    // tiles: 4 + 3), though every job then streams all the weights (2
    // threads, 7x7, weights from L3 as in a model: 960->160 0.094 -> 0.086
    // ms; 1152->192, 6 panels, stays on channels: 0.119 vs 0.124).
    if (!shared && T > 1 && p.N * G == 1 && cb == T && ptiles >= T) {
      const double by_channels = double(cpj) / double(panels);
      const double by_pixels = double((ptiles + T - 1) / T) / double(ptiles);
      if (by_pixels < by_channels) {
        cb = 1;
        cpj = panels;
        pb = T;
      }
    }
    while (pb < ptiles / 2 && (p.N * G * cb * pb < JPT * T || (p.N * G * cb * pb) % T != 0)) ++pb;
    const index_t tpj = (ptiles + pb - 1) / pb;
    pb = (ptiles + tpj - 1) / tpj;
    const index_t nkb = (rows + KC - 1) / KC;
    AlignedFloats Ap;
    if (shared) Ap.resize(p.N * G * rows * ohwp);
    if (shared) run_jobs(p.N * G * nkb, [&](index_t job) {
      const index_t kb = job % nkb, ng = job / nkb, g = ng % G, n = ng / G;
      const index_t p0 = kb * KC, kc = std::min(KC, rows - p0);
      kt.conv_pack_rows7(p, x + (n * p.C + g * Cg) * hw, p0, kc, 0, ohw,
                         Ap.data() + ng * rows * ohwp + p0 * ohwp);
    });
    run_jobs(p.N * G * cb * pb, [&](index_t job) {
      thread_local AlignedFloats Ct, Aown;
      if (Ct.size < tpj * 7 * cpj * NR) Ct.resize(tpj * 7 * cpj * NR);
      if (!shared && Aown.size < KC * tpj * 7) Aown.resize(KC * tpj * 7);
      const index_t pbi = job % pb, cbi = (job / pb) % cb, ng = job / (pb * cb);
      const index_t g = ng % G, n = ng / G;
      const index_t c0 = cbi * cpj * NR, c1 = std::min(Kg, c0 + cpj * NR);
      const index_t j0 = pbi * tpj * 7, j1 = std::min(ohw, j0 + tpj * 7);
      if (c0 >= c1 || j0 >= j1) return;
      const index_t cw = c1 - c0, nj = j1 - j0;
      for (index_t p0 = 0; p0 < rows; p0 += KC) {
        const index_t kc = std::min(KC, rows - p0);
        const float* A;
        if (shared) {
          A = Ap.data() + ng * rows * ohwp + p0 * ohwp + j0 * kc;
        } else {
          kt.conv_pack_rows7(p, x + (n * p.C + g * Cg) * hw, p0, kc, j0, nj, Aown.data());
          A = Aown.data();
        }
        GemmTileOut o;
        o.beta = p0 == 0 ? 0.f : 1.f;
        o.final = false;
        kt.gemm_block_rows7(kc, nj, cw, A, Bt + g * npad * rows + p0 * npad + c0 * kc,
                            Ct.data(), cw, o);
      }
      store_transposed(Ct.data(), cw, nj, y + (n * p.K + g * Kg + c0) * ohw + j0,
                       residual ? residual + (n * p.K + g * Kg + c0) * ohw + j0 : nullptr, ohw,
                       ep.bias ? ep.bias + g * Kg + c0 : nullptr, ep);
    });
  }

  // y[k][j] = epilogue(Ct[j][k]) for nj pixels x cw channels (y rows `ld`
  // apart), in blocks of 16 channels (one cache line of a Ct row) with the
  // pixels inner. Channel by channel, the nj rows read (cw floats apart: 4
  // KB for 1024 channels) share few L1 sets and evict each other before the
  // next channel reuses them: that loop was 22% of a 512->2048 7x7 layer
  // (perf). SSE: 4x4 register transposes. 2 threads, 7x7 planes, A/B in
  // alternating processes: 512->2048 0.60 -> 0.49 ms, 320->1280 0.20 ->
  // 0.19, 1024->2048 stride 2 1.12 -> 1.06; 2048->512 level.
  static void store_transposed(const float* Ct, index_t cw, index_t nj, float* y,
                               const float* residual, index_t ld, const float* bias,
                               const Epilogue& ep) {
    const bool clamp = ep.clamp();
    auto one = [&](index_t k, index_t j) {
      float v = Ct[j * cw + k] + (bias ? bias[k] : 0.f);
      if (residual) v += residual[k * ld + j];
      if (clamp) v = std::min(std::max(v, ep.lo), ep.hi);
      y[k * ld + j] = v;
    };
    for (index_t k0 = 0; k0 < cw; k0 += 16) {
      const index_t kb = std::min<index_t>(16, cw - k0);
      index_t j = 0;
#if defined(__SSE2__)
      const index_t kb4 = kb / 4 * 4;
      const __m128 lo = _mm_set1_ps(ep.lo), hi = _mm_set1_ps(ep.hi);
      for (; j + 4 <= nj; j += 4) {
        for (index_t i = 0; i < kb4; i += 4) {
          const index_t k = k0 + i;
          __m128 r0 = _mm_loadu_ps(Ct + j * cw + k), r1 = _mm_loadu_ps(Ct + (j + 1) * cw + k),
                 r2 = _mm_loadu_ps(Ct + (j + 2) * cw + k), r3 = _mm_loadu_ps(Ct + (j + 3) * cw + k);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // r_t: channel k + t, pixels j..j+3
          __m128 r[4] = {r0, r1, r2, r3};
          for (index_t t = 0; t < 4; ++t) {
            __m128 v = r[t];
            if (bias) v = _mm_add_ps(v, _mm_set1_ps(bias[k + t]));
            if (residual) v = _mm_add_ps(v, _mm_loadu_ps(residual + (k + t) * ld + j));
            if (clamp) v = _mm_min_ps(_mm_max_ps(v, lo), hi);
            _mm_storeu_ps(y + (k + t) * ld + j, v);
          }
        }
        for (index_t i = kb4; i < kb; ++i)
          for (index_t jj = j; jj < j + 4; ++jj) one(k0 + i, jj);
      }
#endif
      for (; j < nj; ++j)
        for (index_t i = 0; i < kb; ++i) one(k0 + i, j);
    }
  }
};

// Shifted GEMM. Row r = (c, ki, kj) of the implicit-GEMM B matrix is input
// plane c shifted by the tap's offset once the input is zero-padded and, for
// stride s, split into its s x s phases (a stride-s conv is a stride-1 conv
// over the phases). The output is computed over the padded width Wf (each
// row's Wf - OW extra columns are dropped when copying out), so B is read in
// place: no per-call packing, only the padded input (about x's size) is
// written. A 1x1, stride-1, unpadded conv reads x itself and stores into y.
struct ShiftedRunner {
  struct Layout {
    index_t Hf = 0, Wf = 0, P = 1;  // phase-plane size, phases in use
    bool direct = false;            // B read from x itself
    std::vector<int> slot;          // phase (ph * stride_w + pw) -> plane, or -1
  };

  static Layout layout(const Conv2dParams& p) {
    Layout L;
    const index_t sh = p.stride_h, sw = p.stride_w;
    L.direct = p.kh == 1 && p.kw == 1 && sh == 1 && sw == 1 && p.pad_t == 0 && p.pad_l == 0 &&
               p.OH == p.H && p.OW == p.W;
    if (L.direct) {
      L.Hf = p.H;
      L.Wf = p.W;
      L.slot = {0};
      return L;
    }
    L.slot.assign(size_t(sh * sw), -1);
    L.P = 0;
    for (index_t ki = 0; ki < p.kh; ++ki)
      for (index_t kj = 0; kj < p.kw; ++kj) {
        int& s = L.slot[size_t((ki * p.dil_h % sh) * sw + kj * p.dil_w % sw)];
        if (s < 0) s = int(L.P++);
      }
    L.Hf = std::max((p.H + p.pad_t + p.pad_b + sh - 1) / sh, p.OH + (p.kh - 1) * p.dil_h / sh);
    L.Wf = shifted_width(p);
    return L;
  }

  // Zero-padded phase planes (`plane` floats apart, rows of L.Wf) of
  // channels [c0, c1) of image n into dst (channel c0's first plane), phase
  // rows [r0, r1), row r stored at row r - rbase of its plane.
  static void fill(const Conv2dParams& p, const Layout& L, const float* x, float* dst,
                   index_t plane, index_t n, index_t c0, index_t c1, index_t r0, index_t r1,
                   index_t rbase) {
    const KernelTable& kt = kernels();
    const index_t sh = p.stride_h, sw = p.stride_w;
    for (index_t c = c0; c < c1; ++c) {
      const float* xc = x + (n * p.C + c) * p.H * p.W;
      for (index_t ph = 0; ph < sh; ++ph)
        for (index_t pw = 0; pw < sw; ++pw) {
          const int s = L.slot[size_t(ph * sw + pw)];
          if (s < 0) continue;
          kt.shifted_fill_rows(xc, p.H, p.W, sh, sw, ph, p.pad_t, pw - p.pad_l, r0, r1, L.Wf,
                               dst + ((c - c0) * L.P + s) * plane + (r0 - rbase) * L.Wf);
        }
    }
  }

  // What a thread's local planes hold: rows [wb, fb) of image-group ng's
  // planes for the call numbered `call`.
  struct LocalRows {
    uint64_t call = 0;
    index_t ng = -1, wb = 0, fb = 0;
  };

  static void run(const PackedConv2d& pk, const Conv2dParams& p, const float* x, float* y,
                  const Epilogue& ep, const float* residual) {
    static std::atomic<uint64_t> calls{0};
    const uint64_t call = calls.fetch_add(1, std::memory_order_relaxed) + 1;
    const KernelTable& kt = kernels();
    const Layout L = layout(p);
    const index_t MR = pk.mr_, KC = pk.kc_, NR = kt.gemm_nr;
    const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, khw = p.kh * p.kw;
    const index_t rows = Cg * khw, ohw = p.OH * p.OW, hw = p.H * p.W;
    const index_t nflat = L.direct ? ohw : p.OH * L.Wf;
    // B is read in place: a job's setup costs ~6 rows' worth, not the ~24
    // of packing, so splits over columns win more often (2 threads: 14x14
    // 1x1 layers 576->96 0.135 -> 0.116 ms, 672->112 0.179 -> 0.151; a 3x3
    // stride-2 128x28x28 0.466 -> 0.437; interleaved A/B in one process).
    const GemmJobs jobs(pk, p, nflat, NR, 6);
    // Where the padded planes live. Local: each job fills the phase rows
    // its columns read (its output rows plus the kernel's reach) into a
    // per-thread buffer, which stays in that core's L1/L2; a shared copy
    // of the whole input is written by one core and read by the other, and
    // its fill measured ~20% of a SqueezeNet 3x3 layer at 2 threads (local:
    // 1.16x there, stems 1.1x). Not where the rows of all channels outgrow
    // half an L2 (ResNet-50's 128x56x56 stride-2 layer: 1 MB, 0.92x).
    const index_t reach =
        (p.kh - 1) * p.dil_h / p.stride_h * L.Wf + (p.kw - 1) * p.dil_w / p.stride_w;
    const index_t lrows = std::min(L.Hf, (jobs.cpj * NR - 1 + reach + L.Wf - 1) / L.Wf + 1);
    const bool local = !L.direct && Cg * L.P * lrows * L.Wf <= (index_t(512) << 10) / 4;
    // Local planes hold `cap` rows: room for the rows of the next jobs on
    // the same thread, which continue this job's (see below).
    const index_t cap = local ? std::min(L.Hf, 2 * lrows) : L.Hf;
    const index_t plane = cap * L.Wf;
    const index_t per_ng = Cg * L.P * plane, slack = NR + 64;
    // B row r = (c, tap): each tap's offset in its phase plane once, then
    // per channel, not four divisions per row (1.01-1.02x on SqueezeNet's
    // 3x3 layers at 2 threads).
    std::vector<index_t> offs(static_cast<size_t>(rows));
    if (L.direct) {
      for (index_t r = 0; r < rows; ++r) offs[size_t(r)] = r * hw;
    } else {
      for (index_t t = 0; t < khw; ++t) {
        const index_t dy = t / p.kw * p.dil_h, dx = t % p.kw * p.dil_w;
        const int s = L.slot[size_t((dy % p.stride_h) * p.stride_w + dx % p.stride_w)];
        offs[size_t(t)] = s * plane + dy / p.stride_h * L.Wf + dx / p.stride_w;
      }
      for (index_t c = 1; c < Cg; ++c)
        for (index_t t = 0; t < khw; ++t)
          offs[size_t(c * khw + t)] = offs[size_t(t)] + c * L.P * plane;
    }
    AlignedFloats xpad;
    const float* src = x;
    if (!L.direct && !local) {
      // Slack past the last plane: whole NR panels read beyond nflat.
      const index_t total = p.N * G * per_ng;
      xpad.resize(total + slack);
      std::fill(xpad.data() + total, xpad.data() + total + slack, 0.f);
      // ~32K floats of planes per fill job: several channels, or for large
      // planes (3-channel stems) bands of rows, so that few channels still
      // split evenly across the threads.
      const index_t chunk =
          std::max<index_t>(1, (index_t(1) << 15) / std::max<index_t>(plane * L.P, 1));
      const index_t per_img = (p.C + chunk - 1) / chunk;
      const index_t band = chunk > 1 ? L.Hf
                                     : std::max<index_t>(1, (index_t(1) << 15) / (L.Wf * L.P));
      const index_t nband = (L.Hf + band - 1) / band;
      run_jobs(p.N * per_img * nband, [&](index_t job) {
        const index_t r0 = job % nband * band, cj = job / nband;
        const index_t n = cj / per_img, c0 = (cj % per_img) * chunk;
        fill(p, L, x, xpad.data() + n * p.C * L.P * plane + c0 * L.P * plane, plane, n, c0,
             std::min(p.C, c0 + chunk), r0, std::min(L.Hf, r0 + band), 0);
      });
      src = xpad.data();
    }
    const index_t MC = jobs.MC, mpj = jobs.mpj;
    const float* A = pk.a_.data();
    const index_t* off = offs.data();
    run_jobs(jobs.count, [&](index_t job) {
      const GemmJobs::Job jb = jobs.at(job);
      if (jb.empty()) return;
      const index_t ng = jb.ng, g = ng % G, n = ng / G, j0 = jb.j0, j1 = jb.j1, m0 = jb.m0,
                    m1 = jb.m1;
      const float* base = src + (L.direct ? (n * p.C + g * Cg) * hw : ng * per_ng);
      if (local) {
        // The job reads phase rows [r0, r1) of this group's planes: only
        // those its kept columns read (lrows allows for the worst alignment
        // of a job's columns on the rows; the rest of a last, partial panel
        // reads stale rows into columns that are dropped). The buffer keeps
        // rows [wb, fb) at row r - wb; base is shifted so that flat column j
        // still reads base + j + offs[k]. Jobs are dealt in contiguous
        // ranges, so a thread's next job usually continues its last one's
        // rows and fills only the rows it adds, sliding the kept ones to
        // the front when the buffer is full (the halo rows were filled
        // again per job: 3x3 kernels 2 of every ~4-5 rows).
        const index_t r0 = j0 / L.Wf, r1 = std::min(r0 + lrows, (j1 - 1 + reach) / L.Wf + 1);
        thread_local AlignedFloats lbuf;
        thread_local LocalRows st;
        if (lbuf.size < per_ng + slack) {
          lbuf.resize(per_ng + slack);
          st = LocalRows();
        }
        float* buf = lbuf.data();
        const index_t c0 = g * Cg, c1 = (g + 1) * Cg;
        if (st.call == call && st.ng == ng && r0 >= st.wb && r0 <= st.fb) {
          if (r1 > st.wb + cap) {  // slide rows [r0, fb) to the front
            const index_t keep = st.fb - r0;
            if (keep > 0)
              for (index_t q = 0; q < Cg * L.P; ++q)
                std::memmove(buf + q * plane, buf + q * plane + (r0 - st.wb) * L.Wf,
                             size_t(keep * L.Wf) * sizeof(float));
            st.wb = r0;
          }
          if (r1 > st.fb) {
            fill(p, L, x, buf, plane, n, c0, c1, st.fb, r1, st.wb);
            st.fb = r1;
          }
        } else {
          fill(p, L, x, buf, plane, n, c0, c1, r0, r1, r0);
          std::fill(buf + per_ng, buf + per_ng + slack, 0.f);
          st = LocalRows{call, ng, r0, r1};
        }
        base = buf - st.wb * L.Wf;
      }
      const index_t cbase = (n * p.K + g * Kg) * ohw;
      GemmTileOut o;
      o.clamp = ep.clamp();
      o.lo = ep.lo;
      o.hi = ep.hi;
      o.ldr = ohw;
      if (L.direct) {
        // Whole panels in place; a last partial one is packed (reading it
        // in place would run past the end of x), in narrow panels where the
        // ISA has them (14x14 planes: 4 columns of a 32-wide panel used).
        const index_t jfull = j0 + (j1 - j0) / NR * NR;
        const bool narrow_tail = kt.gemm_nr_small > 0;
        auto pack_tail = narrow_tail ? kt.conv_pack_b_small : kt.conv_pack_b;
        auto block_tail = narrow_tail ? kt.gemm_block_small : kt.gemm_block;
        float* Bp = jfull < j1 ? b_scratch(KC * NR) : nullptr;
        for (index_t p0 = 0; p0 < rows; p0 += KC) {
          const index_t kc = std::min(KC, rows - p0);
          const float* Ablk = A + g * pk.mpad_ * rows + p0 * pk.mpad_;
          if (Bp) pack_tail(p, base, p0, kc, jfull, j1 - jfull, Bp);
          for (index_t i0 = m0; i0 < m1; i0 += MC) {
            const index_t mc = std::min(MC, m1 - i0);
            o.beta = p0 == 0 ? 0.f : 1.f;
            o.final = p0 + kc == rows;
            o.bias = ep.bias ? ep.bias + g * Kg + i0 : nullptr;
            float* C = y + cbase + i0 * ohw;
            const float* R = residual ? residual + cbase + i0 * ohw : nullptr;
            if (jfull > j0) {
              o.residual = R ? R + j0 : nullptr;
              kt.gemm_block_shifted(kc, mc, jfull - j0, Ablk + i0 * kc, base + j0, off + p0,
                                    C + j0, ohw, o);
            }
            if (Bp) {
              o.residual = R ? R + jfull : nullptr;
              block_tail(kc, mc, j1 - jfull, Ablk + i0 * kc, Bp, C + jfull, ohw, o);
            }
          }
        }
        return;
      }
      // Tiles stored straight into y: with no padding columns (1x1 strided)
      // the flat output is y's layout; otherwise row pieces go out masked,
      // the padding dropped (AVX2/AVX-512).
      const bool dense = L.Wf == p.OW;
      if (dense || kt.gemm_block_flat) {
        for (index_t p0 = 0; p0 < rows; p0 += KC) {
          const index_t kc = std::min(KC, rows - p0);
          const float* Ablk = A + g * pk.mpad_ * rows + p0 * pk.mpad_;
          o.beta = p0 == 0 ? 0.f : 1.f;
          o.final = p0 + kc == rows;
          for (index_t i0 = m0; i0 < m1; i0 += MC) {
            const index_t mc = std::min(MC, m1 - i0);
            float* C = y + cbase + i0 * ohw;
            o.bias = ep.bias ? ep.bias + g * Kg + i0 : nullptr;
            o.residual = residual ? residual + cbase + i0 * ohw + (dense ? j0 : 0) : nullptr;
            if (dense)
              kt.gemm_block_shifted(kc, mc, j1 - j0, Ablk + i0 * kc, base + j0, off + p0, C + j0,
                                    ohw, o);
            else
              kt.gemm_block_flat(kc, mc, j0, j1, Ablk + i0 * kc, base, off + p0, L.Wf, p.OW, C,
                                 ohw, o);
          }
        }
        return;
      }
      const index_t ldcb = (j1 - j0 + NR - 1) / NR * NR;
      thread_local AlignedFloats Cb;
      if (Cb.size < mpj * MR * ldcb) Cb.resize(mpj * MR * ldcb);
      o.final = false;
      for (index_t p0 = 0; p0 < rows; p0 += KC) {
        const index_t kc = std::min(KC, rows - p0);
        const float* Ablk = A + g * pk.mpad_ * rows + p0 * pk.mpad_;
        o.beta = p0 == 0 ? 0.f : 1.f;
        for (index_t i0 = m0; i0 < m1; i0 += MC)
          kt.gemm_block_shifted(kc, std::min(MC, m1 - i0), ldcb, Ablk + i0 * kc, base + j0,
                                off + p0, Cb.data() + (i0 - m0) * ldcb, ldcb, o);
      }
      kt.shifted_unflatten(Cb.data(), ldcb, m1 - m0, j0, j1, L.Wf, p.OW, ohw,
                           y + cbase + m0 * ohw, residual ? residual + cbase + m0 * ohw : nullptr,
                           ep.bias ? ep.bias + g * Kg + m0 : nullptr, ep.clamp(), ep.lo, ep.hi);
    });
  }
};

const float* PackedConv2d::transposed_weights() const {
  std::call_once(bt_once_, [&] {
    const KernelTable& kt = kernels();
    const index_t NR = kt.gemm_nr, Kg = geom_.Kg(), G = geom_.groups;
    const index_t rows = geom_.Cg() * geom_.kh * geom_.kw;
    bt_npad_ = (Kg + NR - 1) / NR * NR;
    bt_.resize(G * bt_npad_ * rows);
    // Where weight (g, oc, row) comes from. GEMM-packed layers: their
    // packing (the original weights are not kept), block (g, row's k
    // block), panel oc / MR, [row in block][oc % MR]. A Winograd-packed
    // layer run directly (small_plane_direct; groups 1): its original
    // weights where it kept them (F(4x4)-capable layers), else taken back
    // from its F(2x2) copy (winograd2_unpack). Such layers keep both
    // copies (ResNet-50: +19 MB for its two 512-channel 7x7 layers).
    std::vector<float> unpacked;
    const float* w = w_.data();
    if (wino_ != 0 && w_.empty()) {
      std::lock_guard<std::mutex> g(wino_mu_);
      unpacked = winograd2_unpack();
      w = unpacked.data();
    }
    auto weight = [&](index_t g, index_t oc, index_t row) {
      if (wino_ != 0) return w[oc * rows + row];
      const index_t p0 = row / kc_ * kc_, kc = std::min(kc_, rows - p0);
      return a_.data()[g * mpad_ * rows + p0 * mpad_ + oc / mr_ * mr_ * kc + (row - p0) * mr_ +
                       oc % mr_];
    };
    for (index_t g = 0; g < G; ++g)
      for (index_t p0 = 0; p0 < rows; p0 += kc_) {
        const index_t kc = std::min(kc_, rows - p0);
        float* blk = bt_.data() + g * bt_npad_ * rows + p0 * bt_npad_;
        for (index_t jp = 0; jp < bt_npad_; jp += NR)
          for (index_t k = 0; k < kc; ++k)
            for (index_t t = 0; t < NR; ++t) {
              const index_t oc = jp + t;
              blk[jp * kc + k * NR + t] = oc < Kg ? weight(g, oc, p0 + k) : 0.f;
            }
      }
  });
  return bt_.data();
}

// The original [K][C][3][3] weights from the F(2x2) copy in a_ (packed as
// pack_winograd leaves it: [xi][k block][K padded x kc] in MR-row panels).
// U = G g G^T and G's first and last rows are e0 and e2, so with
// R = (row 0, row 1 - row 2, row 3) of a 4-vector, g = R U R^T: exact up
// to U's rounding (~1e-7 relative). Under wino_mu_.
std::vector<float> PackedConv2d::winograd2_unpack() const {
  const index_t K = geom_.K, C = geom_.C;
  std::vector<float> w(size_t(K * C * 9));
  for (index_t k = 0; k < K; ++k)
    for (index_t c = 0; c < C; ++c) {
      const index_t c0 = c / kc_ * kc_, kc = std::min(kc_, C - c0);
      const float* u0 = a_.data() + c0 * mpad_ + k / mr_ * mr_ * kc + (c - c0) * mr_ + k % mr_;
      double u[4][4], t[3][4];
      for (int xi = 0; xi < 16; ++xi) u[xi / 4][xi % 4] = u0[xi * mpad_ * C];
      for (int j = 0; j < 4; ++j) {
        t[0][j] = u[0][j];
        t[1][j] = u[1][j] - u[2][j];
        t[2][j] = u[3][j];
      }
      float* g = w.data() + (k * C + c) * 9;
      for (int r = 0; r < 3; ++r) {
        g[r * 3] = float(t[r][0]);
        g[r * 3 + 1] = float(t[r][1] - t[r][2]);
        g[r * 3 + 2] = float(t[r][3]);
      }
    }
  return w;
}

// Jobs of a Winograd layer: blocks of rpj tile rows x mb blocks of output
// channels. About 64 tiles per job where that gives every thread several
// jobs; else the split whose slowest thread, jobs being dealt in contiguous
// ranges (run_jobs), has the least work, counted in GEMM panel columns at
// all the channels. A job's GEMM costs its tiles in whole panels (narrow
// ones, ~12% slower, where wide ones would waste over 20%) plus half a
// panel, and streaming its weights from memory about 16 columns' worth,
// both times its share of the channels; its input transform, repeated by
// every channel block of its rows, about 512 / K columns a tile. So small
// planes split channels: ResNet-50's 512-channel 7x7 layers (16 tiles)
// went from rows 2 + 2, each job streaming all 17 MB of transformed
// weights for 8 tiles, to channel halves: 1.4-1.8 -> 1.2-1.3 ms at 2
// threads in the model. 49-tile layers keep rows 4 + 3 (channel halves
// measured 0.9-1.0x there, at 128-512 channels), 196-tile ones rows 7 + 7.
struct WinogradSplit {
  index_t rpj, mb;
};
static WinogradSplit winograd_split(index_t N, index_t TH, index_t TW, index_t K,
                                    index_t mpanels, index_t NR, index_t ns, bool wouter,
                                    index_t T) {
  const index_t rpj0 = std::max<index_t>(1, 64 / std::max<index_t>(TW, 1));
  if (N * ((TH + rpj0 - 1) / rpj0) >= 4 * T) return {rpj0, 1};
  const index_t cap = std::min(TH, std::max(rpj0, 128 / std::max<index_t>(TW, 1)));
  const double tau = 512.0 / double(std::max<index_t>(K, 1)), weights = 16.0;
  WinogradSplit best{std::min(TH, rpj0), 1};
  double best_cost = 1e300;
  for (index_t rpj = 1; rpj <= cap; ++rpj) {
    const index_t cb = (TH + rpj - 1) / rpj, nt_max = std::min(TH, rpj) * TW;
    // the panel width WinogradRunner picks for these jobs
    index_t nr = NR;
    double slow = 1.0;
    if (ns && (nt_max + NR - 1) / NR * NR * 4 > (nt_max + ns - 1) / ns * ns * 5) {
      nr = ns;
      slow = 1.12;
    }
    for (index_t mb = 1; mb <= std::min(T, mpanels); ++mb) {
      const index_t mpj = (mpanels + mb - 1) / mb, jobs = N * cb * mb;
      double slowest = 0;
      for (index_t t = 0; t < T; ++t) {
        double c = 0;
        for (index_t j = jobs * t / T; j < jobs * (t + 1) / T; ++j) {
          const JobCoord jc = job_coord(j, N, cb, mb, wouter);
          const index_t nt = std::min(rpj, TH - jc.cbi * rpj) * TW;
          const double share =  // (the last blocks may be empty)
              double(std::clamp<index_t>(mpanels - jc.mbi * mpj, 0, mpj)) / double(mpanels);
          c += (double((nt + nr - 1) / nr * nr) * slow + 0.5 * double(nr) + weights) * share +
               tau * double(nt);
        }
        slowest = std::max(slowest, c);
      }
      if (slowest < best_cost * (1 - 1e-9)) {
        best_cost = slowest;
        best = {rpj, mb};
      }
    }
  }
  return best;
}

// Winograd F(m x m, 3x3), m = pk.wino_ (2 or 4): (m+2)^2 GEMMs per job over
// the transformed weights, between the input and output transforms.
struct WinogradRunner {
  static void run(const PackedConv2d& pk, ConvAlgo algo, const Conv2dParams& p, const float* x,
                  float* y, const Epilogue& ep, const float* residual) {
    const KernelTable& kt = kernels();
    // Weights: as packed, or auto's lazily packed F(4x4) ones.
    const bool f4 = algo == ConvAlgo::Winograd3x3F4;
    const index_t m = f4 ? 4 : 2, npts = (m + 2) * (m + 2);
    const float* U = pk.winograd_weights(m);
    auto input = m == 4 ? kt.winograd4_input : kt.winograd_input;
    auto output = m == 4 ? kt.winograd4_output : kt.winograd_output;
    const index_t MR = pk.mr_, KC = pk.kc_, K = p.K, C = p.C;
    const index_t TH = (p.OH + m - 1) / m, TW = (p.OW + m - 1) / m, ohw = p.OH * p.OW;
    // Jobs: blocks of whole tile rows x blocks of output channels
    // (winograd_split).
    const index_t T = get_num_threads();
    const index_t mpanels0 = pk.mpad_ / MR;
    const bool wouter = weights_outer(p, npts * K * C);
    const WinogradSplit sp = winograd_split(p.N, TH, TW, K, mpanels0, kt.gemm_nr,
                                            kt.gemm_nr_small, wouter, T);
    const index_t rpj = sp.rpj, mb = sp.mb;
    // Narrow GEMM panels when a job's tiles would leave wide ones >20% empty
    // (7x7 outputs: 16 tiles in a 32-wide panel).
    index_t NR = kt.gemm_nr;
    auto block = kt.gemm_block;
    if (kt.gemm_nr_small) {
      const index_t nt = std::min(TH, rpj) * TW, ns = kt.gemm_nr_small;
      if ((nt + NR - 1) / NR * NR * 4 > (nt + ns - 1) / ns * ns * 5) {
        NR = ns;
        block = kt.gemm_block_small;
      }
    }
    const index_t cb = (TH + rpj - 1) / rpj;
    const index_t mpj = (mpanels0 + mb - 1) / mb;
    const index_t ntp_max = (rpj * TW + NR - 1) / NR * NR;
    run_jobs(p.N * cb * mb, [&](index_t job) {
      thread_local AlignedFloats V, M;
      if (V.size < npts * std::min(KC, C) * ntp_max) V.resize(npts * std::min(KC, C) * ntp_max);
      if (M.size < npts * mpj * MR * ntp_max) M.resize(npts * mpj * MR * ntp_max);
      const JobCoord jc = job_coord(job, p.N, cb, mb, wouter);
      const index_t n = jc.ng;
      const index_t th0 = jc.cbi * rpj, th1 = std::min(TH, th0 + rpj);
      const index_t m0 = jc.mbi * mpj * MR, m1 = std::min(K, m0 + mpj * MR);
      if (m0 >= m1) return;
      const index_t nt = (th1 - th0) * TW, ntp = (nt + NR - 1) / NR * NR, mc = m1 - m0;
      const float* xg = x + n * C * p.H * p.W;
      for (index_t c0 = 0; c0 < C; c0 += KC) {
        const index_t kc = std::min(KC, C - c0);
        input(p, xg, c0, kc, th0, th1, V.data(), kc * ntp, NR);
        for (index_t xi = 0; xi < npts; ++xi) {
          GemmTileOut o;
          o.beta = c0 == 0 ? 0.f : 1.f;
          o.final = false;
          block(kc, mc, nt, U + (xi * pk.mpad_ * C + c0 * pk.mpad_) + m0 * kc,
                V.data() + xi * kc * ntp, M.data() + xi * mc * ntp, ntp, o);
        }
      }
      output(p, M.data(), mc * ntp, ntp, th0, th1, m0, mc, y + n * K * ohw,
             residual ? residual + n * K * ohw : nullptr, ep.bias, ep.clamp(), ep.lo, ep.hi);
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
  // One k block where the reduction is at most 1.5 blocks long: a second,
  // short block re-reads and re-writes every output tile for little work
  // (2 threads, interleaved processes: a 32->64 3x3 layer, 288 rows, 1.13x;
  // 384->64 1x1 1.07x; a 320-channel Winograd layer 1.05x; 1 thread ~1.02x).
  // Up to 2 blocks' worth measured mixed (432 rows: 0.91-0.97x).
  const bool wino = algo == ConvAlgo::Winograd3x3 || algo == ConvAlgo::Winograd3x3F4 ||
                    (algo == ConvAlgo::Auto && winograd_preferred(geom));
  const index_t red = wino ? geom.C : geom.Cg() * geom.kh * geom.kw;
  if (red > kc_ && 2 * red <= 3 * kc_) kc_ = red;
  if (wino) mpad_ = (geom.K + mr_ - 1) / mr_ * mr_;  // both tile sizes: K padded
  // Packed layers drop the original weights (peak RSS: ResNet-50 holds
  // ~60 MB less) unless a later run may pack them again: auto-chosen
  // Winograd layers small enough for F(4x4) pack that copy lazily.
  if (algo == ConvAlgo::Winograd3x3 || (algo == ConvAlgo::Auto && winograd_preferred(geom))) {
    pack_winograd(w, 2, a_);
    wino_ = 2;
    if (algo != ConvAlgo::Auto || !winograd_f4_channels(geom)) std::vector<float>().swap(w_);
    return;
  }
  if (algo == ConvAlgo::Winograd3x3F4) {
    pack_winograd(w, 4, a_);
    wino_ = 4;
    std::vector<float>().swap(w_);
    return;
  }
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
  std::vector<float>().swap(w_);  // transposed_weights() reads a_
}

// U = G g G^T per (k, c), stored as (tile+2)^2 K x C matrices packed like
// GEMM A blocks: [xi][k block]. F(2x2): G = [1 0 0; 1/2 1/2 1/2;
// 1/2 -1/2 1/2; 0 0 1]; F(4x4): G = [1/4 0 0; -1/6 -1/6 -1/6;
// -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]. In double.
const float* PackedConv2d::winograd_weights(int tile) const {
  std::lock_guard<std::mutex> g(wino_mu_);
  if (wino_ == 4) return a_.data();  // forced F(4x4)
  if (tile == 2) {
    f2_used_ = true;
    if (!a_.data()) pack_winograd(w_.data(), 2, a_);
    return a_.data();
  }
  if (!f4_.data()) {
    pack_winograd(w_.data(), 4, f4_);
    if (!f2_used_) a_ = AlignedFloats();
  }
  return f4_.data();
}

void PackedConv2d::pack_winograd(const float* w, int tile, AlignedFloats& out) const {
  const KernelTable& kt = kernels();
  const index_t K = geom_.K, C = geom_.C, T = tile + 2, npts = T * T;
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static const double G4[6][3] = {{0.25, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                  {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  const double(*G)[3] = tile == 4 ? G4 : G2;
  const index_t mpad = (K + mr_ - 1) / mr_ * mr_;
  std::vector<float> u(size_t(npts * K * C));
  // Small weights are transformed inline: waking the workers costs more
  // than the work.
  parallel_for(K, std::max<index_t>(1, 8192 / std::max<index_t>(C, 1)), [&](index_t b, index_t e) {
    for (index_t k = b; k < e; ++k)
      for (index_t c = 0; c < C; ++c) {
        const float* g = w + (k * C + c) * 9;
        double t[6][3];  // G g
        for (index_t i = 0; i < T; ++i)
          for (int j = 0; j < 3; ++j)
            t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
        for (index_t i = 0; i < T; ++i)
          for (index_t j = 0; j < T; ++j)
            u[size_t(((i * T + j) * K + k) * C + c)] =
                float(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
      }
  });
  out.resize(npts * mpad * C);
  const index_t nkb = (C + kc_ - 1) / kc_;
  parallel_for(npts * nkb, 16, [&](index_t b, index_t e) {
    for (index_t job = b; job < e; ++job) {
      const index_t xi = job / nkb, c0 = (job % nkb) * kc_, kc = std::min(kc_, C - c0);
      kt.gemm_pack_a(u.data() + xi * K * C, C, false, 0, K, c0, kc,
                     out.data() + xi * mpad * C + c0 * mpad);
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
  // Auto's F(2x2)-packed layers also run F(4x4) (packed on first use).
  const bool wino = a == ConvAlgo::Winograd3x3 || a == ConvAlgo::Winograd3x3F4;
  const bool packed_gemm = a == ConvAlgo::ImplicitGemm || a == ConvAlgo::Gemm1x1 ||
                           a == ConvAlgo::ShiftedGemm;
  const bool direct = a == ConvAlgo::ImplicitGemm && wino_ == 2 && forced_ == ConvAlgo::Auto &&
                      small_plane_direct(p);  // (transposed_weights unpacks them)
  const bool ok = wino ? (a == ConvAlgo::Winograd3x3 ? wino_ == 2 : wino_ != 0)
                       : (wino_ == 0 || direct);
  if (!ok && (wino || packed_gemm))
    fail("conv2d", "internal error: weights were packed for another algorithm");
  switch (a) {
    case ConvAlgo::Depthwise: run_depthwise(p, x, w_.data(), y, ep, residual); break;
    case ConvAlgo::Im2colGemm: run_im2col_gemm(p, x, w_.data(), y, ep, residual); break;
    case ConvAlgo::Winograd3x3:
    case ConvAlgo::Winograd3x3F4: WinogradRunner::run(*this, a, p, x, y, ep, residual); break;
    case ConvAlgo::ShiftedGemm: ShiftedRunner::run(*this, p, x, y, ep, residual); break;
    default:
      // 1x1 layers run as shifted GEMMs (stride 1: reading x in place;
      // strided: over the one phase plane they read, no padding columns)
      // and other layers as implicit GEMMs, unless the plane is small
      // enough for the 7-row transposed tiles: under 100 pixels, or up to
      // 196 where the layer is strided, as the tiles' packing subsamples
      // as it copies (ResNet-50's 1x1 512->1024 28->14: 2 threads 1.17 ->
      // 1.01 ms, 1 thread 2.23 -> 1.97, where the shifted GEMM first copied
      // out the phase plane; its 3x3 stride-2 256->256 to 14x14 level at
      // batch 1, 1.05x at batch 8; stride-1 14x14 1x1s stay shifted, 2-3%
      // faster in place; not on Intel, see KernelTable::shifted_1x1).
      const bool strided = p.stride_h > 1 || p.stride_w > 1;
      if (SmallPlaneRunner::applies(kernels(), p) && (p.OH * p.OW < 100 || strided))
        SmallPlaneRunner::run(*this, p, x, y, ep, residual);
      else if (a == ConvAlgo::Gemm1x1 && p.pad_l == 0 && p.pad_t == 0 &&
               shifted_width(p) == p.OW && in_place_1x1(p))
        ShiftedRunner::run(*this, p, x, y, ep, residual);
      else if (SmallPlaneRunner::applies(kernels(), p))
        SmallPlaneRunner::run(*this, p, x, y, ep, residual);
      else
        ConvRunner::gemm(*this, p, x, y, ep, residual);
      break;
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
