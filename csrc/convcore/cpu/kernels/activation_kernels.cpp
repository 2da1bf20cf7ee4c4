// Elementwise kernels of the activation part (one copy per ISA).
#include "convcore/cpu/kernels/backward_table.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void relu_backward(index_t n, const float* gy, const float* x, float* gx) {
  index_t i = 0;
  const vf zero = vf{};
  // x > 0 is false for NaN, so NaN inputs pass no gradient (as torch).
  for (; i + kVW <= n; i += kVW) store(gx + i, load(x + i) > zero ? load(gy + i) : zero);
  for (; i < n; ++i) gx[i] = x[i] > 0.f ? gy[i] : 0.f;
}

float sum(index_t n, const float* x) {
  // Four independent vector accumulators hide the add latency; the lane and
  // accumulator order is fixed, so the result is reproducible.
  vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
  index_t i = 0;
  for (; i + 4 * kVW <= n; i += 4 * kVW) {
    a0 += load(x + i);
    a1 += load(x + i + kVW);
    a2 += load(x + i + 2 * kVW);
    a3 += load(x + i + 3 * kVW);
  }
  for (; i + kVW <= n; i += kVW) a0 += load(x + i);
  const vf a = (a0 + a1) + (a2 + a3);
  float s = 0.f;
  for (int l = 0; l < kVW; ++l) s += a[l];
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
