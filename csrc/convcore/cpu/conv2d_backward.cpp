// conv2d backward through the same (image, group, column tile) jobs as the
// forward pass: im2col / col2im on cache-sized slabs, never a full im2col
// buffer.
//   grad_x: col = W_g^T * dY_tile, col2im-add into grad_x (per image & group,
//           tiles of one image in order, so no two threads write one plane)
//   grad_w: dW_g += dY_tile * col^T, reduced over images and tiles with one
//           private accumulator per thread
#include <algorithm>
#include <cstring>
#include <vector>

#include "convcore/conv2d.h"
#include "convcore/dispatch.h"
#include "convcore/im2col.h"
#include "convcore/parallel.h"

namespace convcore {

namespace {
index_t bwd_tile(const Conv2dParams& p, index_t rows) {
  const index_t nr = kernels().gemm_nr;
  index_t t = std::max<index_t>(nr, (index_t(64) * 1024 / std::max<index_t>(rows, 1)) / nr * nr);
  t = std::min<index_t>(t, 1024);
  return std::min(t, ((p.OH * p.OW + nr - 1) / nr) * nr);
}
}  // namespace

void conv2d_backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  if (!gx) return;
  const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
  const index_t rows = Cg * p.kh * p.kw, ohw = p.OH * p.OW, hw = p.H * p.W;
  const index_t tile = bwd_tile(p, rows);
  const index_t ntiles = (ohw + tile - 1) / tile;
  const KernelTable& kt = kernels();
  // One job per (image, group): its tiles all add into the same input planes.
  parallel_for(p.N * G, 1, [&](index_t b, index_t e) {
    std::vector<float> col(size_t(rows * tile));
    for (index_t ng = b; ng < e; ++ng) {
      const index_t g = ng % G, n = ng / G;
      float* gxg = gx + (n * p.C + g * Cg) * hw;
      std::memset(gxg, 0, size_t(Cg * hw) * sizeof(float));
      for (index_t t = 0; t < ntiles; ++t) {
        const index_t j0 = t * tile, cols = std::min(tile, ohw - j0);
        GemmArgs a;
        a.trans_a = true;
        a.M = rows; a.N = cols; a.K = Kg;
        a.A = w + g * Kg * rows; a.lda = rows;
        a.B = gy + (n * p.K + g * Kg) * ohw + j0; a.ldb = ohw;
        a.C = col.data(); a.ldc = cols;
        kt.sgemm(a);
        col2im_tile_add(p, col.data(), j0, cols, gxg);
      }
    }
  });
}

void conv2d_backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                            float* gb) {
  const index_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups;
  const index_t rows = Cg * p.kh * p.kw, ohw = p.OH * p.OW, hw = p.H * p.W;
  if (gb) {
    parallel_for(p.K, 1, [&](index_t b, index_t e) {
      for (index_t k = b; k < e; ++k) {
        double s = 0;
        for (index_t n = 0; n < p.N; ++n) {
          const float* r = gy + (n * p.K + k) * ohw;
          float acc = 0.f;
          for (index_t j = 0; j < ohw; ++j) acc += r[j];
          s += acc;
        }
        gb[k] = float(s);
      }
    });
  }
  if (!gw) return;
  const index_t tile = bwd_tile(p, rows);
  const index_t ntiles = (ohw + tile - 1) / tile;
  const index_t wsize = p.w_size();
  const KernelTable& kt = kernels();
  const int nt = get_num_threads();
  // Private accumulators per thread, summed at the end in a fixed order so
  // results do not depend on scheduling.
  std::vector<float> partial(size_t(nt) * size_t(wsize), 0.f);
  const index_t jobs = p.N * ntiles;
  for (index_t g = 0; g < G; ++g) {
    parallel_for(jobs, 1, [&](index_t b, index_t e) {
      const int tid = omp_get_thread_num();
      float* acc = partial.data() + size_t(tid) * wsize + g * Kg * rows;
      std::vector<float> col(size_t(rows * tile));
      for (index_t job = b; job < e; ++job) {
        const index_t t = job % ntiles, n = job / ntiles;
        const index_t j0 = t * tile, cols = std::min(tile, ohw - j0);
        im2col_tile(p, x + (n * p.C + g * Cg) * hw, j0, cols, col.data());
        GemmArgs a;
        a.trans_b = true;
        a.M = Kg; a.N = rows; a.K = cols;
        a.A = gy + (n * p.K + g * Kg) * ohw + j0; a.lda = ohw;
        a.B = col.data(); a.ldb = cols;
        a.C = acc; a.ldc = rows;
        a.beta = 1.f;
        kt.sgemm(a);
      }
    });
  }
  parallel_for(wsize, 1 << 12, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      float s = 0.f;
      for (int t = 0; t < nt; ++t) s += partial[size_t(t) * wsize + i];
      gw[i] = s;
    }
  });
}

}  // namespace convcore
