// im2col for one group of one image, restricted to a range of output
// positions: col[r][j - j0] for r = (c, i, j) kernel taps and output
// positions j in [j0, j0 + cols). Padding reads as zero.
#pragma once
#include "convcore/params.h"

namespace convcore {

void im2col_tile(const Conv2dParams& p, const float* x_group, index_t j0, index_t cols,
                 float* col);

// The adjoint: accumulates col back into the image (grad_input).
void col2im_tile_add(const Conv2dParams& p, const float* col, index_t j0, index_t cols,
                     float* x_group);

}  // namespace convcore
