// Fills the dispatch table with this ISA's kernels (one copy per ISA).
#include "convcore/cpu/kernels/backward_table.h"
#include "convcore/cpu/kernels/relu.h"
#include "convcore/cpu/kernels/sgemm_kernel.h"
#include "convcore/dispatch.h"

#include <algorithm>
#include <cstdlib>

#define CC_STR2(x) #x
#define CC_STR(x) CC_STR2(x)

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void fill_table(KernelTable& t) {
  t.isa = CC_STR(CONVCORE_ISA);
  t.simd_width = kVW;
  t.gemm_mr = kMR;
  t.gemm_nr = kNR;
  t.gemm_kc = 256;
  // Tuning knob for benchmarks only: CONVCORE_GEMM_KC=<k block>.
  if (const char* kc = std::getenv("CONVCORE_GEMM_KC")) t.gemm_kc = std::max(16, std::atoi(kc));
  t.sgemm = &sgemm;
  t.sgemv = &sgemv;
  t.gemm_pack_a = &gemm_pack_a;
  t.gemm_block = &gemm_block;
  t.depthwise = &depthwise;
  t.conv_pack_b = &conv_pack_b;
  t.gemm_block_shifted = &gemm_block_shifted;
  t.shifted_unflatten = &shifted_unflatten;
  t.shifted_fill_rows = &shifted_fill_rows;
#if defined(CONVCORE_ISA_avx512) || defined(CONVCORE_ISA_avx2)
  t.gemm_block_flat = &gemm_block_flat;
#else
  t.gemm_block_flat = nullptr;
#endif
  t.winograd_input = &winograd_input;
  t.winograd_output = &winograd_output;
  t.winograd4_input = &winograd4_input;
  t.winograd4_output = &winograd4_output;
#if defined(CONVCORE_ISA_avx512)
  // CONVCORE_GEMM_NARROW=0 turns the narrow-panel variant off (benchmarks).
  const char* narrow = std::getenv("CONVCORE_GEMM_NARROW");
  t.gemm_nr_small = narrow && narrow[0] == '0' ? 0 : kNRSmall;
  t.gemm_block_small = &gemm_block_small;
  t.conv_pack_b_small = &conv_pack_b_n8;
  t.gemm_block_rows7 = &gemm_block_7;
  t.conv_pack_rows7 = &conv_pack_b_7;
  t.pw_dw = &pw_dw;
#else
  t.gemm_nr_small = 0;
  t.gemm_block_small = nullptr;
  t.conv_pack_b_small = nullptr;
#endif
  t.relu = &relu;
  fill_backward_table(t);  // backward, pooling, activation kernels
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
