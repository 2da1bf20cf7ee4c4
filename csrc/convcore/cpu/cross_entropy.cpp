#include "convcore/cross_entropy.h"

#include <cmath>
#include <vector>

#include "convcore/parallel.h"

namespace convcore {

double cross_entropy_forward(const CrossEntropyShape& s, const float* z,
                             const std::int64_t* labels, float smoothing, float grad_scale,
                             float* grad, float* per_row) {
  const index_t N = s.N, C = s.C, rs = s.row_stride, cs = s.col_stride;
  std::vector<double> losses(static_cast<size_t>(N));
  const float keep = 1.f - smoothing, spread = C ? smoothing / float(C) : 0.f;
  // Rows are independent; a job gets at least ~16K logits (a 64x10 batch runs inline).
  parallel_for(N, std::max<index_t>(1, (index_t(1) << 14) / std::max<index_t>(C, 1)),
               [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float* zi = z + i * rs;
      float* gi = grad + i * C;
      float m = -INFINITY;
      double zsum = 0.0;
      for (index_t j = 0; j < C; ++j) {
        const float v = zi[j * cs];
        m = v > m ? v : m;
        zsum += v;
      }
      // exp once per logit: kept in grad, normalised below.
      double esum = 0.0;
      for (index_t j = 0; j < C; ++j) {
        const float ev = std::exp(zi[j * cs] - m);
        gi[j] = ev;
        esum += ev;
      }
      const double lse = double(m) + std::log(esum);
      const index_t t = labels[i];
      double loss = double(keep) * (lse - double(zi[t * cs]));
      if (smoothing != 0.f) loss += double(smoothing) * (lse - zsum / double(C));
      losses[size_t(i)] = loss;
      if (per_row) per_row[i] = float(loss);
      const float inv = float(1.0 / esum);
      for (index_t j = 0; j < C; ++j) gi[j] = (gi[j] * inv - spread) * grad_scale;
      gi[t] -= keep * grad_scale;
    }
  });
  double total = 0.0;
  for (double l : losses) total += l;
  return total;
}

}  // namespace convcore
