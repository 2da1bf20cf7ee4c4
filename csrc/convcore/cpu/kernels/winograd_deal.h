// Deals transformed Winograd values into GEMM B panels (shared by the
// F(2x2) and F(4x4) input transforms, one copy per ISA).
#pragma once
#include <algorithm>

#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/cpu/kernels/vec.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

// Line xi (npts lines of ls floats, tiles [0, nt) valid) -> row c of the
// xi-th operand's panels (Vp + xi * vstride, nr-column panels of kc rows);
// tiles in [nt, ntp) are zeroed.
inline void winograd_deal(float* line, index_t ls, int npts, index_t nt, index_t ntp, float* Vp,
                          index_t vstride, index_t c, index_t kc, index_t nr) {
  for (int xi = 0; xi < npts; ++xi) {
    float* s = line + xi * ls;
    std::fill(s + nt, s + ntp, 0.f);
    float* dpan = Vp + xi * vstride + c * nr;
    if (nr == kNR) {
      for (index_t jp = 0; jp < ntp; jp += kNR, s += kNR, dpan += kc * kNR)
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v) vstore(dpan + v * kVW, vload(s + v * kVW));
    } else {
      for (index_t jp = 0; jp < ntp; jp += nr, s += nr, dpan += kc * nr)
        for (index_t t = 0; t < nr; ++t) dpan[t] = s[t];
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
