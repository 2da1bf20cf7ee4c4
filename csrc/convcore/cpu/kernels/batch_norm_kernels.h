// Per-ISA loops of batch norm over one contiguous run of n floats (one
// image's plane of one channel). Sums are float64, in a fixed lane order.
// Not in the shared dispatch table: cpu/batch_norm.cpp picks the set whose
// ISA matches kernels().isa.
#pragma once
#include "convcore/common.h"

namespace convcore {
namespace cpu {

struct BatchNormKernels {
  // sum(x)
  double (*sum)(index_t n, const float* x) = nullptr;
  // sum((x - mean)^2)
  double (*sumsq_dev)(index_t n, const float* x, double mean) = nullptr;
  // gsum += sum(g), gdot += sum(g*(x - mean)), where g is zeroed at y <= 0
  // when y is given (fused ReLU).
  void (*grad_sums)(index_t n, const float* g, const float* x, const float* y, double mean,
                    double* gsum, double* gdot) = nullptr;
  // y = x*a + b (one FMA), then max(y, 0) if relu.
  void (*affine)(index_t n, const float* x, float a, float b, bool relu, float* y) = nullptr;
  // gx = (g - gmean - (x - mean)*k)*s (torch's form); with x null,
  // gx = g*s. g is masked by y as in grad_sums.
  void (*grad_input)(index_t n, const float* g, const float* x, const float* y, float mean,
                     float k, float gmean, float s, float* gx) = nullptr;
};

#define CONVCORE_BN_DECLARE(isa) \
  namespace isa {                \
  void fill_batch_norm_kernels(BatchNormKernels& t); \
  }
CONVCORE_BN_DECLARE(baseline)
#if CONVCORE_HAVE_X86
CONVCORE_BN_DECLARE(avx2)
CONVCORE_BN_DECLARE(avx512)
#endif
#undef CONVCORE_BN_DECLARE

}  // namespace cpu
}  // namespace convcore
