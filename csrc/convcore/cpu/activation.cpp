#include "convcore/activation.h"

#include "convcore/dispatch.h"
#include "convcore/parallel.h"

namespace convcore {

// Chunks of 64K floats: below that, waking a second thread costs more than
// it saves on a memory-bound loop.
constexpr index_t kElementwiseGrain = index_t(1) << 16;

void relu_forward(index_t n, const float* x, float* y) {
  const auto relu = kernels().relu;
  parallel_for(n, kElementwiseGrain, [&](index_t b, index_t e) { relu(e - b, x + b, y + b); });
}

void relu_backward(index_t n, const float* gy, const float* x, float* gx) {
  const auto bwd = kernels().relu_backward;
  parallel_for(n, kElementwiseGrain, [&](index_t b, index_t e) { bwd(e - b, gy + b, x + b, gx + b); });
}

}  // namespace convcore
