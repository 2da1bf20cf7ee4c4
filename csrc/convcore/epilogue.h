// What a GEMM/conv does to its result before storing it: per-output-channel
// bias, an optional residual added after the bias, then a clamp (ReLU is
// [0, inf), ReLU6 / Clip is [lo, hi]). The runner fuses these into convs.
#pragma once
#include <limits>

namespace convcore {

struct Epilogue {
  const float* bias = nullptr;      // one value per output row (channel), or null
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  bool clamp() const {
    return lo != -std::numeric_limits<float>::infinity() ||
           hi != std::numeric_limits<float>::infinity();
  }
  static Epilogue relu() { Epilogue e; e.lo = 0.f; return e; }
  static Epilogue clip(float lo, float hi) { Epilogue e; e.lo = lo; e.hi = hi; return e; }
};

}  // namespace convcore
