#include "convcore/im2col.h"

#include <algorithm>

namespace convcore {

namespace {
// Visits every (row r, column j) of the tile with its input offset, or -1
// where the tap falls in padding. Row-major over rows, then output rows.
template <typename F>
void for_each_tap(const Conv2dParams& p, index_t j0, index_t cols, F&& f) {
  const index_t Cg = p.Cg();
  const index_t j1 = j0 + cols;
  index_t r = 0;
  for (index_t c = 0; c < Cg; ++c)
    for (index_t ki = 0; ki < p.kh; ++ki)
      for (index_t kj = 0; kj < p.kw; ++kj, ++r) {
        index_t j = j0;
        while (j < j1) {
          const index_t oh = j / p.OW, ow0 = j % p.OW;
          const index_t ow1 = std::min(p.OW, ow0 + (j1 - j));
          const index_t ih = oh * p.stride_h - p.pad_t + ki * p.dil_h;
          const index_t base = (c * p.H + ih) * p.W;
          const bool row_ok = ih >= 0 && ih < p.H;
          for (index_t ow = ow0; ow < ow1; ++ow, ++j) {
            const index_t iw = ow * p.stride_w - p.pad_l + kj * p.dil_w;
            const bool ok = row_ok && iw >= 0 && iw < p.W;
            f(r, j - j0, ok ? base + iw : index_t(-1));
          }
        }
      }
}
}  // namespace

void im2col_tile(const Conv2dParams& p, const float* x, index_t j0, index_t cols, float* col) {
  for_each_tap(p, j0, cols, [&](index_t r, index_t jj, index_t off) {
    col[r * cols + jj] = off >= 0 ? x[off] : 0.f;
  });
}

void col2im_tile_add(const Conv2dParams& p, const float* col, index_t j0, index_t cols,
                     float* x) {
  for_each_tap(p, j0, cols, [&](index_t r, index_t jj, index_t off) {
    if (off >= 0) x[off] += col[r * cols + jj];
  });
}

}  // namespace convcore
