// parallel_for: how kernels fan work out. Chunks run on the job pool
// (cpu/job_pool.h), the same workers the convolutions use: one set of
// threads, no OpenMP team waking beside it (on a 2-core VM a second pool's
// sleeping thread costs up to ~0.4 ms to wake under load). Each chunk runs
// with FTZ/DAZ on, and the range is split statically, so results are
// reproducible for a given thread count whichever thread runs a chunk.
#pragma once
#include <algorithm>

#include "convcore/common.h"
#include "convcore/cpu/job_pool.h"
#include "convcore/threading.h"

namespace convcore {

// Calls f(begin, end) on disjoint chunks of [0, n). `grain` is the smallest
// chunk worth a thread; with fewer than two chunks it runs inline.
template <typename F>
void parallel_for(index_t n, index_t grain, F&& f) {
  if (n <= 0) return;
  const int nt = get_num_threads();
  const index_t max_chunks = std::max<index_t>(1, n / std::max<index_t>(1, grain));
  const index_t workers = std::min<index_t>(nt, max_chunks);
  if (workers <= 1) {
    DenormalGuard g;
    f(index_t(0), n);
    return;
  }
  run_jobs(workers, [&](index_t t) {
    const index_t b = n * t / workers, e = n * (t + 1) / workers;
    if (b < e) f(b, e);
  });
}

// Calls f(i) for each i in [0, n), statically scheduled.
template <typename F>
void parallel_for_each(index_t n, F&& f) {
  parallel_for(n, 1, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) f(i);
  });
}

}  // namespace convcore
