// Fills the dispatch table with this ISA's kernels (one copy per ISA).
#include "convcore/cpu/kernels/backward_table.h"
#include "convcore/cpu/kernels/relu.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/dispatch.h"

#define CC_STR2(x) #x
#define CC_STR(x) CC_STR2(x)

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void fill_table(KernelTable& t) {
  t.isa = CC_STR(CONVCORE_ISA);
  t.simd_width = kVW;
  t.gemm_mr = kGemmMR;
  t.gemm_nr = 2 * kVW;
  t.sgemm = &sgemm;
  t.relu = &relu;
  fill_backward_table(t);  // backward, pooling, activation kernels
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
