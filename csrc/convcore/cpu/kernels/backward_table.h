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

float max_nan(index_t n, const float* x);
void pool_vmax(index_t n, const float* src, float* acc);
void pool_vadd(index_t n, const float* src, float* acc);
void pool_vmax_rows(index_t n, const float* src, index_t pitch, index_t nrows, float* dst);
void pool_vadd_rows(index_t n, const float* src, index_t pitch, index_t nrows, float* dst);
void pool_hmax(index_t OW, index_t sw, index_t kw, index_t dw, const float* row, float* y);
void pool_havg(index_t OW, index_t sw, index_t kw, const float* row, const float* div, float* y);

void pool_argmax_row(const PoolArgmaxRow& r);
void pool_avg_hgather(index_t W, index_t sw, index_t kw, index_t pad_l, const float* g, float* out);

void fill_backward_table(KernelTable& t);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
