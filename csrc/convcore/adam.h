// One Adam / AdamW step over a float32 parameter, in place, in one pass
// (PyTorch's bias-corrected rule):
//   decoupled (AdamW): p *= 1 - lr*wd;  else g += wd*p
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  (amsgrad: vmax = max(vmax, v), use vmax)
//   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - b_k^step
#pragma once
#include "convcore/common.h"

namespace convcore {

struct AdamHyper {
  float lr = 0.f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;  // AdamW
};

// step >= 1 counts this update; max_sq is null unless amsgrad.
void adam_step(index_t n, float* p, const float* g, float* exp_avg, float* exp_avg_sq,
               float* max_sq, const AdamHyper& h, index_t step);

}  // namespace convcore
