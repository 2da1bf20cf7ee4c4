#include "convcore/gemm.h"

#include <algorithm>
#include <vector>

#include "convcore/parallel.h"

namespace convcore {

void gemm(const GemmArgs& g) {
  const KernelTable& kt = kernels();
  if (g.M <= kGemvMaxM && kt.sgemv) {
    // A few rows: stream B instead of packing it. A transposed A is gathered
    // into rows first (M x K floats, small).
    GemmArgs s = g;
    std::vector<float> rows;
    if (g.trans_a) {
      rows.resize(size_t(g.M * g.K));
      for (index_t m = 0; m < g.M; ++m)
        for (index_t k = 0; k < g.K; ++k) rows[size_t(m * g.K + k)] = g.A[k * g.lda + m];
      s.A = rows.data();
      s.lda = g.K;
      s.trans_a = false;
    }
    const index_t unit = 64;  // columns per job unit
    const index_t slabs = (g.N + unit - 1) / unit;
    const index_t grain =
        std::max<index_t>(1, (index_t(1) << 16) / std::max<index_t>(1, unit * g.M * g.K));
    parallel_for(slabs, grain, [&](index_t b, index_t e) {
      kt.sgemv(s, b * unit, std::min(g.N, e * unit));
    });
    return;
  }
  const index_t nr = kt.gemm_nr, mr = kt.gemm_mr;
  // Split the wider of M and N into register-tile-aligned slabs: each thread
  // packs its own panels and writes disjoint parts of C.
  const bool split_n = g.N >= g.M || g.N >= 4 * nr * get_num_threads();
  const index_t unit = split_n ? nr : mr;
  const index_t len = split_n ? g.N : g.M;
  const index_t slabs = (len + unit - 1) / unit;
  // Fewer than ~64K FMAs per thread is not worth waking a worker.
  const index_t work_per_slab = std::max<index_t>(1, unit * (split_n ? g.M : g.N) * std::max<index_t>(g.K, 1));
  const index_t grain = std::max<index_t>(1, (index_t(1) << 16) / work_per_slab);
  parallel_for(slabs, grain, [&](index_t b, index_t e) {
    GemmArgs s = g;
    const index_t lo = b * unit, hi = std::min(len, e * unit);
    if (split_n) {
      s.N = hi - lo;
      s.B = g.trans_b ? g.B + lo * g.ldb : g.B + lo;
      s.C = g.C + lo;
    } else {
      s.M = hi - lo;
      s.A = g.trans_a ? g.A + lo : g.A + lo * g.lda;
      s.C = g.C + lo * g.ldc;
      if (g.ep.bias) s.ep.bias = g.ep.bias + lo;
    }
    kt.sgemm(s);
  });
}

}  // namespace convcore
