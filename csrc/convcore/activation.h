// Elementwise activations, vectorised through the dispatch table.
#pragma once
#include "convcore/common.h"

namespace convcore {

// y = max(x, 0); y may equal x (in place).
void relu_forward(index_t n, const float* x, float* y);
// grad_x = grad_y where x > 0, else 0; grad_x may equal grad_y.
void relu_backward(index_t n, const float* grad_y, const float* x, float* grad_x);

}  // namespace convcore
