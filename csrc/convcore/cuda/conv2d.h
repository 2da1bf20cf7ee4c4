// conv2d on the GPU, same semantics as convcore/conv2d.h. All pointers are
// device pointers on the current device; work is queued on the legacy
// default stream (so it is ordered with cudaMemcpy and other convcore ops).
// `p` must be finalize()d. Shapes whose GEMM dimensions exceed 2^31-1 are
// refused with std::invalid_argument (the kernels index planes in 32 bits).
#pragma once
#include <string>

#include "convcore/epilogue.h"
#include "convcore/params.h"

namespace convcore {
namespace cuda {

enum class ConvPrecision { FP32, TF32 };

// Which kernel conv2d_forward runs: "depthwise-direct", or an implicit-GEMM
// tile ("igemm-f32-128x128", "-64x128", "-32x256", "-64x64",
// "igemm-tf32-wmma-128x128", "-64x128"), with "-splitk" when the reduction
// is split across blocks.
std::string conv_algo(const Conv2dParams& p, ConvPrecision prec);

// Test hook: make conv2d_forward run the named kernel (a conv_algo name) on
// every GEMM-shaped conv; "" restores the automatic choice. A name that does
// not apply (TF32 below sm_80, split-K on a tile without it) is refused
// with std::invalid_argument when a conv runs.
void set_conv_kernel_override(const std::string& name);

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
