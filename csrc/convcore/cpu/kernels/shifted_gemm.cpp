// Shifted-GEMM convolution kernels (one copy per ISA): the micro-kernel loop
// with B rows read in place from a zero-padded input (row k = base +
// offs[k]), and the copy of the flat, padded-width result into the output
// planes with the epilogue. See ShiftedRunner in cpu/conv2d_forward.cpp.
#include <algorithm>

#include "convcore/cpu/kernels/sgemm_kernel.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void gemm_block_shifted(index_t kc, index_t mc, index_t nc, const float* Ap, const float* base,
                        const index_t* offs, float* C, index_t ldc, const GemmTileOut& out) {
  for (index_t jr = 0; jr < nc; jr += kNR) {
    const index_t nr = std::min<index_t>(kNR, nc - jr);
    const ShiftedB B{base + jr, offs};
    for (index_t ir = 0; ir < mc; ir += kMR) {
      GemmTileOut o = out;
      if (o.bias) o.bias += ir;
      if (o.residual) o.residual += ir * o.ldr + jr;
      micro_kernel_src<kMR, kNV>(kc, Ap + ir * kc, B, C + ir * ldc + jr, ldc,
                                 std::min<index_t>(kMR, mc - ir), nr, o);
    }
  }
}

void shifted_unflatten(const float* Cb, index_t ldcb, index_t mc, index_t j0, index_t j1,
                       index_t Wf, index_t OW, index_t ohw, float* y, const float* res,
                       const float* bias, bool clamp, float lo, float hi) {
  for (index_t i = 0; i < mc; ++i) {
    const float b = bias ? bias[i] : 0.f;
    const float* src = Cb + i * ldcb - j0;  // src[j]: flat column j
    float* yi = y + i * ohw;
    const float* ri = res ? res + i * ohw : nullptr;
    for (index_t j = j0; j < j1;) {
      const index_t oh = j / Wf, ow = j % Wf;
      const index_t end = std::min(j1, oh * Wf + OW);
      if (ow < OW) {
        const index_t n = end - j, o = oh * OW + ow;
        const float* s = src + j;
        float* d = yi + o;
        if (ri) {
          const float* r = ri + o;
          for (index_t t = 0; t < n; ++t) d[t] = s[t] + b + r[t];
        } else {
          for (index_t t = 0; t < n; ++t) d[t] = s[t] + b;
        }
        if (clamp)
          for (index_t t = 0; t < n; ++t) d[t] = std::min(std::max(d[t], lo), hi);
      }
      j = (oh + 1) * Wf;
    }
  }
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
