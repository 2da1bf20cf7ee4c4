// Softmax cross entropy of float32 logits (N, C) against integer labels,
// forward and gradient in one pass per row, as
// torch.nn.functional.cross_entropy (with label smoothing).
//
// Per row i with label t: lse = log(sum_j exp(z_j)) (max-shifted),
//   loss_i = (1 - eps) * (lse - z_t) + eps * (lse - mean_j z_j)
//   grad_ij = scale * (softmax(z)_j - (1 - eps) * [j == t] - eps / C)
// so nn's backward is the stored gradient times the incoming one.
#pragma once
#include <cstdint>

#include "convcore/common.h"

namespace convcore {

struct CrossEntropyShape {
  index_t N = 0, C = 0;
  index_t row_stride = 0, col_stride = 1;  // of the logits, in elements (any layout)
};

// labels must be in [0, C) (the caller checks). grad: N*C floats, row-major.
// per_row (N floats) may be null. Returns the sum of the per-row losses,
// added in row order in float64 (the result does not depend on threads).
double cross_entropy_forward(const CrossEntropyShape& s, const float* logits,
                             const std::int64_t* labels, float smoothing, float grad_scale,
                             float* grad, float* per_row);

}  // namespace convcore
