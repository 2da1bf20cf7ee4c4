// Pooling on the GPU, same semantics as convcore/pool.h (NaN propagates in
// max pooling, ties go to the first max, all-padding windows give -inf /
// index -1). Device pointers, current device, legacy default stream.
#pragma once
#include "convcore/params.h"

namespace convcore {
namespace cuda {

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y, index_t* indices);
void max_pool2d_backward(const Pool2dParams& p, const float* grad_y, const float* x,
                         float* grad_x);
void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y);
void avg_pool2d_backward(const Pool2dParams& p, const float* grad_y, float* grad_x);

void global_avg_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y);
void global_max_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y);
void global_avg_pool2d_backward(index_t N, index_t C, index_t HW, const float* grad_y,
                                float* grad_x);
void global_max_pool2d_backward(index_t N, index_t C, index_t HW, const float* grad_y,
                                const float* x, float* grad_x);

}  // namespace cuda
}  // namespace convcore
