#pragma once
#include "convcore/cpu/kernels/simd.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void relu(index_t n, const float* x, float* y);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
