// Thread pool control and the per-worker floating-point environment.
#pragma once
#include <cstdint>

namespace convcore {

// Number of threads every kernel uses (the caller plus job-pool workers).
// Default: OMP_NUM_THREADS if set (the usual convention), else the cores.
int get_num_threads();
void set_num_threads(int n);

// A thread count for the calling thread only (0: none, use the global one).
// Kernels read get_num_threads() on the thread that calls them, so this lets
// two InferenceSessions with different `threads` run at once in two Python
// threads without touching each other's (or the global) setting.
int get_local_num_threads();
void set_local_num_threads(int n);

// Sets flush-to-zero and denormals-are-zero for the current thread and
// restores the previous MXCSR on destruction. Subnormal operands slow x86
// arithmetic 20-50x; trained weights and small activations produce them.
// Every kernel opens one of these inside each worker (see parallel_for).
class DenormalGuard {
 public:
  DenormalGuard();
  ~DenormalGuard();
  DenormalGuard(const DenormalGuard&) = delete;
  DenormalGuard& operator=(const DenormalGuard&) = delete;

 private:
  unsigned saved_ = 0;
};

}  // namespace convcore
