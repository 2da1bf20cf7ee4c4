// Forward max / average pooling of whole planes in one pass (one copy per
// ISA, in pool_kernels.cpp). Each output row reads the window's input rows
// straight from x and reduces vertically then horizontally in registers, so
// no row buffer is written and re-read. Windows that reach into the padding
// (a column or two at each edge) take a scalar path.
//
// In the KernelTable as pool_fwd_planes. pool_fwd_supported() says which
// geometries the vector path takes (dilation 1, stride 1 or 2, kernel width
// 2 or 3); others use the row-buffer kernels.
#pragma once
#include "convcore/common.h"

namespace convcore {
namespace cpu {

// The window rows of one output row: input rows [ih0, ih0 + n), all real
// (n = 0: the window lies in the padding), and the row factor of the
// average divisor.
struct PoolRowTaps {
  index_t ih0 = 0, n = 0;
  float count = 0.f;
};

struct PoolFwdArgs {
  const float* x = nullptr;  // planes of H*W floats
  float* y = nullptr;        // planes of OH*OW floats
  index_t planes = 0;        // of the whole tensor (edge blocks stay inside it)
  index_t H = 0, W = 0, OH = 0, OW = 0;
  index_t kw = 1, sw = 1, pl = 0;  // dilation 1
  bool is_max = true;
  const PoolRowTaps* rows = nullptr;  // OH entries
  const float* col_count = nullptr;   // avg: OW column factors of the divisor
};

inline bool pool_fwd_supported(index_t kw, index_t sw, index_t dh, index_t dw) {
  return dh == 1 && dw == 1 && (sw == 1 || sw == 2) && (kw == 2 || kw == 3);
}

#ifdef CONVCORE_ISA
// Planes [nc0, nc1) of a.x -> a.y (this ISA's copy).
namespace CONVCORE_ISA {
void pool_fwd_planes(const PoolFwdArgs& a, index_t nc0, index_t nc1);
}
#endif

}  // namespace cpu
}  // namespace convcore
