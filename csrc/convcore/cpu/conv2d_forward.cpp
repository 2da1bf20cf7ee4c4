// conv2d forward: algorithm choice in one place (choose_conv_algo), and the
// work split into (image, group, column tile) jobs so that batch 1 keeps every
// core busy and the im2col buffer stays cache-sized.
#include <algorithm>
#include <cstring>
#include <vector>

#include "convcore/conv2d.h"
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
  }
  return "?";
}

ConvAlgo choose_conv_algo(const Conv2dParams& p) {
  if (p.groups == p.C && p.groups > 1) return ConvAlgo::Depthwise;
  if (p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 &&
      p.pad_l == 0 && p.pad_b == 0 && p.pad_r == 0)
    return ConvAlgo::Gemm1x1;
  return ConvAlgo::Im2colGemm;
}

namespace {

// Columns of the output plane handled by one job: a multiple of the GEMM
// tile width, small enough that the im2col slab (rows x cols) stays in L2,
// and small enough that there are at least ~2 jobs per thread.
index_t column_tile(const Conv2dParams& p, index_t rows, index_t jobs_outside) {
  const index_t nr = kernels().gemm_nr;
  const index_t ohw = p.OH * p.OW;
  index_t t = std::max<index_t>(nr, (index_t(64) * 1024 / std::max<index_t>(rows, 1)) / nr * nr);
  t = std::min<index_t>(t, 1024);
  const index_t want_jobs = 2 * get_num_threads();
  while (t > nr && jobs_outside * ((ohw + t - 1) / t) < want_jobs) t = std::max(nr, (t / 2) / nr * nr);
  return std::min(t, ((ohw + nr - 1) / nr) * nr);
}

void conv_gemm(const Conv2dParams& p, const float* x, const float* w, float* y,
               const Epilogue& ep, bool is1x1) {
  const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
  const index_t rows = Cg * p.kh * p.kw;
  const index_t ohw = p.OH * p.OW, hw = p.H * p.W;
  const index_t tile = column_tile(p, rows, p.N * G);
  const index_t ntiles = (ohw + tile - 1) / tile;
  const index_t jobs = p.N * G * ntiles;
  const KernelTable& kt = kernels();
  parallel_for(jobs, 1, [&](index_t b, index_t e) {
    std::vector<float> col;
    if (!is1x1) col.resize(size_t(rows * tile));
    for (index_t job = b; job < e; ++job) {
      const index_t t = job % ntiles, ng = job / ntiles;
      const index_t g = ng % G, n = ng / G;
      const index_t j0 = t * tile, cols = std::min(tile, ohw - j0);
      const float* xg = x + (n * p.C + g * Cg) * hw;
      GemmArgs a;
      a.M = Kg; a.N = cols; a.K = rows;
      a.A = w + g * Kg * rows; a.lda = rows;
      if (is1x1) {
        a.B = xg + j0; a.ldb = hw;
      } else {
        im2col_tile(p, xg, j0, cols, col.data());
        a.B = col.data(); a.ldb = cols;
      }
      a.C = y + (n * p.K + g * Kg) * ohw + j0; a.ldc = ohw;
      a.beta = 0.f;
      a.ep = ep;
      if (ep.bias) a.ep.bias = ep.bias + g * Kg;
      kt.sgemm(a);
    }
  });
}

// Depthwise (groups == C, K = C * multiplier): a direct loop per output
// plane; no GEMM, since each output channel sees one input channel.
void conv_depthwise(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep) {
  const index_t mult = p.K / p.C, hw = p.H * p.W, ohw = p.OH * p.OW;
  parallel_for(p.N * p.K, 1, [&](index_t b, index_t e) {
    std::vector<float> acc(size_t(p.OW));
    for (index_t nk = b; nk < e; ++nk) {
      const index_t k = nk % p.K, n = nk / p.K, c = k / mult;
      const float* xc = x + (n * p.C + c) * hw;
      const float* wk = w + k * p.kh * p.kw;
      float* yk = y + nk * ohw;
      const float bias = ep.bias ? ep.bias[k] : 0.f;
      for (index_t oh = 0; oh < p.OH; ++oh) {
        std::fill(acc.begin(), acc.end(), bias);
        for (index_t i = 0; i < p.kh; ++i) {
          const index_t ih = oh * p.stride_h - p.pad_t + i * p.dil_h;
          if (ih < 0 || ih >= p.H) continue;
          const float* xr = xc + ih * p.W;
          for (index_t j = 0; j < p.kw; ++j) {
            const float wv = wk[i * p.kw + j];
            const index_t off = j * p.dil_w - p.pad_l;
            // ow range with 0 <= ow*sw + off < W
            index_t lo = off >= 0 ? 0 : (-off + p.stride_w - 1) / p.stride_w;
            index_t hi = p.W - off <= 0 ? 0 : (p.W - off - 1) / p.stride_w + 1;
            hi = std::min(hi, p.OW);
            if (p.stride_w == 1) {
              for (index_t ow = lo; ow < hi; ++ow) acc[ow] += wv * xr[ow + off];
            } else {
              for (index_t ow = lo; ow < hi; ++ow) acc[ow] += wv * xr[ow * p.stride_w + off];
            }
          }
        }
        float* yr = yk + oh * p.OW;
        if (ep.clamp())
          for (index_t ow = 0; ow < p.OW; ++ow) yr[ow] = std::min(std::max(acc[ow], ep.lo), ep.hi);
        else
          std::memcpy(yr, acc.data(), size_t(p.OW) * sizeof(float));
      }
    }
  });
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep_in, const float* residual, ConvAlgo algo) {
  if (p.N == 0) return;
  Epilogue ep = ep_in;
  if (algo == ConvAlgo::Auto) algo = choose_conv_algo(p);
  if (residual) {
    // Residual enters through beta=1 of the GEMM, or here for the direct
    // kernels: compute without clamp, add, then clamp.
    Epilogue no_clamp;
    no_clamp.bias = ep.bias;
    if (algo == ConvAlgo::Depthwise)
      conv_depthwise(p, x, w, y, no_clamp);
    else
      conv_gemm(p, x, w, y, no_clamp, algo == ConvAlgo::Gemm1x1);
    const index_t n = p.y_size();
    parallel_for(n, 1 << 14, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) {
        float r = y[i] + residual[i];
        if (ep.clamp()) r = std::min(std::max(r, ep.lo), ep.hi);
        y[i] = r;
      }
    });
    return;
  }
  switch (algo) {
    case ConvAlgo::Depthwise: conv_depthwise(p, x, w, y, ep); break;
    case ConvAlgo::Gemm1x1: conv_gemm(p, x, w, y, ep, true); break;
    default: conv_gemm(p, x, w, y, ep, false); break;
  }
}

}  // namespace convcore
