// Direct kernels for convolutions with one input channel per group
// (depthwise, channel multiplier Kg >= 1), where a GEMM tile would be almost
// all padding (internal; defined in conv2d_depthwise.cu).
#pragma once
#include "convcore/cuda/conv2d_loaders.cuh"
#include "convcore/epilogue.h"

namespace convcore {
namespace cuda {
namespace detail {

void depthwise_forward(const ConvDims& d, const float* x, const float* w, float* y,
                       const Epilogue& ep, const float* residual);
void depthwise_backward_input(const ConvDims& d, const float* gy, const float* w, float* gx);
void depthwise_backward_weight(const ConvDims& d, const float* gy, const float* x, float* gw);
// grad_b[k] = sum of grad_y over (img, oh, ow); any conv.
void bias_backward(const ConvDims& d, const float* gy, float* gb);

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
