// One SGD step over a float32 parameter, in place, in one pass (PyTorch's
// rule): d = g + wd*p; with momentum, buf = init ? d : mom*buf + (1-damp)*d
// and d = nesterov ? d + mom*buf : buf; then p -= lr*d.
#pragma once
#include "convcore/common.h"

namespace convcore {

struct SgdHyper {
  float lr = 0.f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
};

// buf may be null when momentum == 0; init: buf is written, not read.
void sgd_step(index_t n, float* p, const float* g, float* buf, const SgdHyper& h, bool init);

}  // namespace convcore
