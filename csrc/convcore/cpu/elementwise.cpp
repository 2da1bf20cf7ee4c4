#include "convcore/elementwise.h"

#include "convcore/parallel.h"

namespace convcore {

void add(index_t n, const float* a, const float* b, float* out) {
  // A job of at least 64K floats (768 KB of traffic): below that a worker's wake-up costs more.
  parallel_for(n, index_t(1) << 16, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  });
}

}  // namespace convcore
