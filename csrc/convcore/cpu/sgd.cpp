#include "convcore/sgd.h"

#include "convcore/parallel.h"

namespace convcore {

namespace {

template <bool kWd, bool kMom, bool kInit, bool kNesterov>
void sgd_range(index_t b, index_t e, float* p, const float* g, float* buf, const SgdHyper& h) {
  const float lr = h.lr, mom = h.momentum, keep = 1.f - h.dampening, wd = h.weight_decay;
  for (index_t i = b; i < e; ++i) {
    float d = g[i];
    if (kWd) d += wd * p[i];
    if (kMom) {
      const float v = kInit ? d : mom * buf[i] + keep * d;
      buf[i] = v;
      d = kNesterov ? d + mom * v : v;
    }
    p[i] -= lr * d;
  }
}

}  // namespace

void sgd_step(index_t n, float* p, const float* g, float* buf, const SgdHyper& h, bool init) {
  // Elementwise and memory-bound: only large parameters are worth a second thread.
  parallel_for(n, index_t(1) << 16, [&](index_t b, index_t e) {
    const bool wd = h.weight_decay != 0.f, mom = h.momentum != 0.f && buf;
    if (!mom) {
      if (wd) sgd_range<true, false, false, false>(b, e, p, g, buf, h);
      else sgd_range<false, false, false, false>(b, e, p, g, buf, h);
    } else if (init) {
      if (h.nesterov) {
        if (wd) sgd_range<true, true, true, true>(b, e, p, g, buf, h);
        else sgd_range<false, true, true, true>(b, e, p, g, buf, h);
      } else {
        if (wd) sgd_range<true, true, true, false>(b, e, p, g, buf, h);
        else sgd_range<false, true, true, false>(b, e, p, g, buf, h);
      }
    } else if (h.nesterov) {
      if (wd) sgd_range<true, true, false, true>(b, e, p, g, buf, h);
      else sgd_range<false, true, false, true>(b, e, p, g, buf, h);
    } else {
      if (wd) sgd_range<true, true, false, false>(b, e, p, g, buf, h);
      else sgd_range<false, true, false, false>(b, e, p, g, buf, h);
    }
  });
}

}  // namespace convcore
