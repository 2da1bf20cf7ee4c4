#include "convcore/cpu/kernels/relu.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

namespace {
typedef int vi __attribute__((vector_size(kVW * sizeof(int))));
// x is negative, non-zero and not NaN, decided on the bits: the kernels run
// with denormals-are-zero, under which -1e-45 < 0 would be false, while
// torch (and IEEE) call it negative. As int32, such floats lie in
// (INT_MIN, bits(-inf)].
constexpr int kNegInfBits = int(0xFF800000u);
inline bool neg1(float x) {
  int i;
  std::memcpy(&i, &x, sizeof i);
  return i > int(0x80000000u) && i <= kNegInfBits;
}
}  // namespace

void relu(index_t n, const float* x, float* y) {
  index_t i = 0;
  const vf zero = vf{};
  const vi lo = vi{} + int(0x80000000u), hi = vi{} + kNegInfBits;
  // x < 0 ? 0 : x, as torch: NaN and -0.0 pass through unchanged.
  for (; i + kVW <= n; i += kVW) {
    const vf v = load(x + i);
    const vi b = (vi)v;
    store(y + i, (b > lo) & (b <= hi) ? zero : v);
  }
  for (; i < n; ++i) y[i] = neg1(x[i]) ? 0.f : x[i];
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
