// Declarations of the per-ISA GEMM kernels, shared by their sources and table.cpp.
#pragma once
#include "convcore/cpu/kernels/gemm_ukernel.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void sgemm(const GemmArgs& g);
void conv_pack_b(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                 index_t nc, float* Bp);
void depthwise(const Conv2dParams& p, const float* x, const float* w, const float* bias,
               float* y, const float* residual, bool clamp, float lo, float hi, index_t nk0,
               index_t nk1);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
