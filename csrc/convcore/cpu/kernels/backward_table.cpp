#include "convcore/cpu/kernels/backward_table.h"
#include "convcore/cpu/kernels/pool_fwd.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void fill_backward_table(KernelTable& t) {
  t.relu_backward = &relu_backward;
  t.sum = &sum;
  t.dw_bwd_input = &dw_bwd_input;
  t.dw_bwd_weight = &dw_bwd_weight;
  t.max_nan = &max_nan;
  t.pool_vmax = &pool_vmax;
  t.pool_vmax_rows = &pool_vmax_rows;
  t.pool_vadd_rows = &pool_vadd_rows;
  t.pool_vadd = &pool_vadd;
  t.pool_hmax = &pool_hmax;
  t.pool_havg = &pool_havg;
  t.pool_argmax_row = &pool_argmax_row;
  t.pool_avg_hgather = &pool_avg_hgather;
  t.pool_fwd_planes = &pool_fwd_planes;
}

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
