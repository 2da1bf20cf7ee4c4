// Helpers for code that is compiled for the GPU and, unchanged, for the host
// emulation in tests/cuda_host/ (which checks kernel index math on machines
// without a GPU). Internal.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace convcore {
namespace cuda {
namespace detail {

using i64 = std::int64_t;

// Read-only loads through the texture path on the GPU; plain loads when the
// same code runs on the host (tests/cuda_host/).
#ifdef __CUDA_ARCH__
#define CC_LDG(p) __ldg(p)
#else
#define CC_LDG(p) (*(p))
#endif

// Store that adds: atomic on the GPU; the host emulation runs blocks one at
// a time and never has two threads add to one address at once.
__host__ __device__ inline void add_to(float* p, float v) {
#ifdef __CUDA_ARCH__
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

// Division by a runtime-constant divisor without the ~20-instruction integer
// division: q = umulhi(n, mul) >> shr (Granlund-Montgomery, as CUTLASS's
// FastDivmod). Exact for 0 <= n < 2^31 and 1 <= d < 2^31; the host emulation
// test checks it against `/`.
struct FastDiv {
  int d = 1;
  unsigned mul = 0, shr = 0;
  FastDiv() = default;
  explicit FastDiv(int divisor) : d(divisor) {
    if (d == 1) return;
    unsigned l = 0;  // ceil(log2(d))
    while ((1u << l) < unsigned(d)) ++l;
    const unsigned p = 31 + l;
    mul = unsigned(((std::uint64_t(1) << p) + unsigned(d) - 1) / unsigned(d));
    shr = p - 32;
  }
  __host__ __device__ int div(int n) const {
    if (d == 1) return n;
#ifdef __CUDA_ARCH__
    return int(__umulhi(unsigned(n), mul) >> shr);
#else
    return int(unsigned((std::uint64_t(unsigned(n)) * mul) >> 32) >> shr);
#endif
  }
  // q = n / d and r = n % d together.
  __host__ __device__ int divmod(int n, int& r) const {
    const int q = div(n);
    r = n - q * d;
    return q;
  }
};

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
