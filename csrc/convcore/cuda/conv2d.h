// conv2d on the GPU, same semantics as convcore/conv2d.h. All pointers are
// device pointers on the current device; work is queued on the legacy
// default stream (so it is ordered with cudaMemcpy and other convcore ops).
// `p` must be finalize()d. Shapes whose GEMM dimensions exceed 2^31-1 are
// refused with std::invalid_argument (the kernels index planes in 32 bits).
#pragma once
#include "convcore/epilogue.h"
#include "convcore/params.h"

namespace convcore {
namespace cuda {

enum class ConvPrecision { FP32, TF32 };

// Which kernel conv2d_forward runs ("depthwise-direct", "igemm-f32-128x128",
// "igemm-f32-64x64", "igemm-tf32-wmma-128x128").
const char* conv_algo(const Conv2dParams& p, ConvPrecision prec);

// y = clamp(conv(x, w) + bias [+ residual], ep.lo, ep.hi); ep.bias and
// residual are device pointers or null. TF32 (tensor cores, 10-bit mantissa
// inputs, FP32 accumulation) is used only when asked for and the device is
// sm_80+; otherwise the FP32 kernel runs.
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep, const float* residual, ConvPrecision prec);

// Gradients (FP32). Null outputs are skipped.
void conv2d_backward_input(const Conv2dParams& p, const float* grad_y, const float* w,
                           float* grad_x);
void conv2d_backward_weight(const Conv2dParams& p, const float* grad_y, const float* x,
                            float* grad_w, float* grad_b);

}  // namespace cuda
}  // namespace convcore
