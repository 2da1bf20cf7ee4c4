// Per-ISA kernels of the backward / pooling / activation part, registered
// into the dispatch table by fill_backward_table() (called from table.cpp).
#pragma once
#include "convcore/cpu/kernels/simd.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void relu_backward(index_t n, const float* gy, const float* x, float* gx);
float sum(index_t n, const float* x);
void dw_bwd_input(const DwPlaneGeom& d, const float* gy, const float* w, float* buf);
void dw_bwd_weight(const DwPlaneGeom& d, const float* gy, const float* buf, float* acc);

void fill_backward_table(KernelTable& t);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
