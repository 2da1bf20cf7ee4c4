// Max / average / global pooling, forward and backward, NCHW float32.
#pragma once
#include "convcore/params.h"

namespace convcore {

// indices (optional) receive the flat h*W+w position of each max in its
// input plane, as PyTorch's return_indices. All-padding windows give -inf.
void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y, index_t* indices);
// grad_x = scatter of grad_y to each window's (first) max; recomputed from x.
void max_pool2d_backward(const Pool2dParams& p, const float* grad_y, const float* x,
                         float* grad_x);

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y);
void avg_pool2d_backward(const Pool2dParams& p, const float* grad_y, float* grad_x);

// (N, C, H, W) -> (N, C): mean / max over each plane.
void global_avg_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y);
void global_max_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y);
void global_avg_pool2d_backward(index_t N, index_t C, index_t HW, const float* grad_y,
                                float* grad_x);
void global_max_pool2d_backward(index_t N, index_t C, index_t HW, const float* grad_y,
                                const float* x, float* grad_x);

}  // namespace convcore
