// Shared basics of the C++ library: index type and argument errors.
// The library knows nothing of Python; the bindings turn
// std::invalid_argument into ValueError and std::length_error/bad_alloc into
// MemoryError-like ValueErrors.
#pragma once
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace convcore {

// All index arithmetic uses 64 bits: N*C*H*W passes 2^31 on real workloads.
using index_t = std::int64_t;

// Largest tensor we agree to allocate or address (elements). 2^40 floats is
// 4 TiB: anything above it is a malformed request, not a real workload.
constexpr index_t kMaxElements = index_t(1) << 40;

template <typename... Args>
[[noreturn]] inline void fail(const char* op, Args&&... parts) {
  std::ostringstream os;
  os << op << ": ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

// a*b with overflow and absurd-size detection.
inline index_t checked_mul(const char* op, index_t a, index_t b, const char* what) {
  if (a < 0 || b < 0) fail(op, what, " has a negative size");
  if (a != 0 && b > kMaxElements / a)
    fail(op, what, " is too large (", a, " x ", b, " elements would exceed the ",
         kMaxElements, "-element limit)");
  return a * b;
}

}  // namespace convcore
