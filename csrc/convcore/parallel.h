// parallel_for: the one way kernels fan work out over OpenMP. Each worker
// runs with FTZ/DAZ on (DenormalGuard), and the range is split statically so
// that runs are reproducible for a given thread count.
#pragma once
#include <omp.h>

#include <algorithm>

#include "convcore/common.h"
#include "convcore/threading.h"

namespace convcore {

// Calls f(begin, end) on disjoint chunks of [0, n). `grain` is the smallest
// chunk worth a thread; with fewer than two chunks it runs inline.
template <typename F>
void parallel_for(index_t n, index_t grain, F&& f) {
  if (n <= 0) return;
  const int nt = get_num_threads();
  const index_t max_chunks = std::max<index_t>(1, n / std::max<index_t>(1, grain));
  const int workers = int(std::min<index_t>(nt, max_chunks));
  if (workers <= 1) {
    DenormalGuard g;
    f(index_t(0), n);
    return;
  }
#pragma omp parallel num_threads(workers)
  {
    DenormalGuard g;
    const int t = omp_get_thread_num();
    const int T = omp_get_num_threads();
    const index_t b = n * t / T, e = n * (t + 1) / T;
    if (b < e) f(b, e);
  }
}

// Calls f(i) for each i in [0, n), statically scheduled.
template <typename F>
void parallel_for_each(index_t n, F&& f) {
  parallel_for(n, 1, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) f(i);
  });
}

}  // namespace convcore
