// 2-D convolution, NCHW float32, weights (K, C/groups, kh, kw).
#pragma once
#include "convcore/epilogue.h"
#include "convcore/params.h"

namespace convcore {

enum class ConvAlgo {
  Auto, Gemm1x1, Im2colGemm, Depthwise, Winograd3x3, Direct, ImplicitGemm, ShiftedGemm,
  Winograd3x3F4  // F(4x4, 3x3); Winograd3x3 is F(2x2, 3x3)
};
const char* conv_algo_name(ConvAlgo a);

// The algorithm conv2d_forward will use for these parameters (one place).
ConvAlgo choose_conv_algo(const Conv2dParams& p);

// y = act(conv(x, w) + bias [+ residual]). `p` must be finalize()d.
// residual, if given, has y's shape and is added before the clamp.
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep = Epilogue(), const float* residual = nullptr,
                    ConvAlgo algo = ConvAlgo::Auto);

// Gradients. Each output pointer may be null to skip that gradient.
void conv2d_backward_input(const Conv2dParams& p, const float* grad_y, const float* w,
                           float* grad_x);
void conv2d_backward_weight(const Conv2dParams& p, const float* grad_y, const float* x,
                            float* grad_w, float* grad_b);

}  // namespace convcore
