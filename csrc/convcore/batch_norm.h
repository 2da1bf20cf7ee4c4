// Batch normalisation over axis 1 of an (N, C, L) float32 tensor (L = H*W
// for BatchNorm2d), forward and backward, as torch.nn.functional.batch_norm.
//
// Work is split over channels only, and each channel's sums run in a fixed
// order in float64, so results do not depend on the thread count.
#pragma once
#include "convcore/common.h"

namespace convcore {

struct BatchNormShape {
  index_t N = 0, C = 0, L = 1;
};

// Training mode: per-channel batch mean and biased variance (float64) ->
// mean[c], invstd[c] = 1/sqrt(var + eps); y = x*a + b with a = invstd*w,
// b = bias - mean*a (torch's form), then max(y, 0) if `relu`. weight/bias may
// be null (1 and 0). If running_mean/var are given they are updated in place:
// r = (1 - momentum)*r + momentum*stat, with the unbiased variance. Needs
// N*L > 1 (the caller checks).
void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* weight,
                              const float* bias, double eps, double momentum,
                              float* running_mean, float* running_var, bool relu, float* y,
                              double* mean, double* invstd);

// Eval mode: the running statistics normalise; mean/invstd are filled from
// them (what backward needs).
void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             double eps, bool relu, float* y, double* mean, double* invstd);

// Gradients from grad_y. With `y` (the forward output of a fused ReLU) the
// incoming gradient is first zeroed where y <= 0. training: mean and invstd
// are the batch statistics, so grad_x includes their dependence on x;
// otherwise grad_x = grad_y*w*invstd. grad_weight = sum(g*(x - mean))*invstd,
// grad_bias = sum(g), per channel. Any output may be null.
void batch_norm_backward(const BatchNormShape& s, const float* grad_y, const float* x,
                         const float* y, const double* mean, const double* invstd,
                         const float* weight, bool training, float* grad_x, float* grad_weight,
                         float* grad_bias);

}  // namespace convcore
