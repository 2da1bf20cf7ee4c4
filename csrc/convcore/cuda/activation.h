// Elementwise ops on the GPU (device pointers, current device).
#pragma once
#include "convcore/common.h"

namespace convcore {
namespace cuda {

// y = x > 0 ? x : 0; y may equal x.
void relu_forward(index_t n, const float* x, float* y);
// grad_x = x > 0 ? grad_y : 0; grad_x may equal grad_y.
void relu_backward(index_t n, const float* grad_y, const float* x, float* grad_x);
// y = a + b, then max(., 0) if relu (the runner's unfused Add / Add+Relu);
// y may equal a or b.
void add_forward(index_t n, const float* a, const float* b, float* y, bool relu);
// Fills n floats with zero (used for gradients accumulated with atomics).
void fill_zero(index_t n, float* p);

}  // namespace cuda
}  // namespace convcore
