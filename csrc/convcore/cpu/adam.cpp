#include "convcore/adam.h"

#include <cmath>

#include "convcore/parallel.h"

namespace convcore {

void adam_step(index_t n, float* p, const float* g, float* m, float* v, float* vmax,
               const AdamHyper& h, index_t step) {
  const float b1 = h.beta1, b2 = h.beta2, eps = h.eps, wd = h.weight_decay;
  const float step_size = float(double(h.lr) / (1.0 - std::pow(double(b1), double(step))));
  const float sqrt_bc2 = float(std::sqrt(1.0 - std::pow(double(b2), double(step))));
  const float shrink = h.decoupled ? 1.f - h.lr * wd : 1.f;
  const bool l2 = !h.decoupled && wd != 0.f;
  // Elementwise and memory-bound: only large parameters are worth a second thread.
  parallel_for(n, index_t(1) << 16, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      float gi = g[i];
      float pi = p[i] * shrink;
      if (l2) gi += wd * pi;
      const float mi = b1 * m[i] + (1.f - b1) * gi;
      float vi = b2 * v[i] + (1.f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      if (vmax) {
        vi = vmax[i] > vi ? vmax[i] : vi;
        vmax[i] = vi;
      }
      p[i] = pi - step_size * mi / (std::sqrt(vi) / sqrt_bc2 + eps);
    }
  });
}

}  // namespace convcore
