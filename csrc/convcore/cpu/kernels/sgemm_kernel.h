// Declarations of the per-ISA kernels, shared by their sources and table.cpp.
#pragma once
#include "convcore/cpu/kernels/simd.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

// Rows of the SGEMM register tile (columns are two vectors).
#if defined(CONVCORE_ISA_avx512)
constexpr int kGemmMR = 12;
#else
constexpr int kGemmMR = 6;
#endif

void sgemm(const GemmArgs& g);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
