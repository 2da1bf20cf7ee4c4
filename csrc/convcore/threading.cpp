#include "convcore/threading.h"

#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <cstdlib>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <xmmintrin.h>
#define CONVCORE_HAS_MXCSR 1
#endif

namespace convcore {
namespace {

int default_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? int(hw) : 1;
}

std::atomic<int>& thread_setting() {
  static std::atomic<int> n{default_threads()};
  return n;
}

}  // namespace

thread_local int local_threads = 0;

int get_num_threads() {
  return local_threads > 0 ? local_threads : thread_setting().load(std::memory_order_relaxed);
}

int get_local_num_threads() { return local_threads; }

void set_local_num_threads(int n) {
  if (n < 0)
    throw std::invalid_argument("set_local_num_threads: n must be >= 0, got " + std::to_string(n));
  local_threads = n;
}

void set_num_threads(int n) {
  if (n <= 0) throw std::invalid_argument("set_num_threads: n must be positive, got " + std::to_string(n));
  thread_setting().store(n, std::memory_order_relaxed);
}

#ifdef CONVCORE_HAS_MXCSR
DenormalGuard::DenormalGuard() : saved_(_mm_getcsr()) {
  _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
}
DenormalGuard::~DenormalGuard() { _mm_setcsr(saved_); }
#else
DenormalGuard::DenormalGuard() {}
DenormalGuard::~DenormalGuard() {}
#endif

}  // namespace convcore
