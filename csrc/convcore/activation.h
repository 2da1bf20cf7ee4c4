// Elementwise activations, vectorised through the dispatch table.
#pragma once
#include "convcore/common.h"

namespace convcore {

// y = x < 0 ? 0 : x (NaN and -0.0 pass, as torch); y may equal x (in place).
void relu_forward(index_t n, const float* x, float* y);
// grad_x = 0 where x <= 0, else grad_y (NaN x passes, as torch); may be in place.
void relu_backward(index_t n, const float* grad_y, const float* x, float* grad_x);

}  // namespace convcore
