// Elementwise float32 arithmetic for the training front end: nn's Tensor
// addition (ResNet's residual adds) and the gradient sums where two branches
// of the graph meet. Memory-bound; large arrays are split over the threads.
#pragma once
#include "convcore/common.h"

namespace convcore {

// out[i] = a[i] + b[i]; out may alias a or b.
void add(index_t n, const float* a, const float* b, float* out);

}  // namespace convcore
