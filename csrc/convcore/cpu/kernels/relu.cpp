#include "convcore/cpu/kernels/relu.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void relu(index_t n, const float* x, float* y) {
  index_t i = 0;
  const vf zero = vf{};
  for (; i + kVW <= n; i += kVW) store(y + i, vmax(load(x + i), zero));
  for (; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
