// Elementwise kernels of the activation part (one copy per ISA).
#include "convcore/cpu/kernels/backward_table.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {
typedef int vi __attribute__((vector_size(kVW * sizeof(int))));
// x > 0 or NaN, decided on the bits (the kernels run with denormals-are-zero,
// under which 1e-45 > 0 would be false): as int32 that is i > 0, or a
// negative NaN, i in (bits(-inf), 0).
constexpr int kNegInfBits = int(0xFF800000u);
inline bool passes1(float x) {
  int i;
  std::memcpy(&i, &x, sizeof i);
  return i > 0 || (i < 0 && i > kNegInfBits);
}
}  // namespace

void relu_backward(index_t n, const float* gy, const float* x, float* gx) {
  index_t i = 0;
  const vf zero = vf{};
  const vi z = vi{}, hi = vi{} + kNegInfBits;
  // torch's threshold_backward on the output: x <= 0 passes nothing, while
  // NaN inputs (whose output is NaN, not <= 0) pass the gradient through.
  for (; i + kVW <= n; i += kVW) {
    const vi b = (vi)load(x + i);
    store(gx + i, (b > z) | ((b < z) & (b > hi)) ? load(gy + i) : zero);
  }
  for (; i < n; ++i) gx[i] = passes1(x[i]) ? gy[i] : 0.f;
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
