// Batch norm drivers: one job per channel. A channel's N planes (of L floats,
// C*L apart) are read while they sit in cache: two passes for the
// statistics (mean, then the centred sum of squares: exact for data far from
// zero, unlike sum(x^2) - mean^2), one for the output. Channels are
// independent, so the thread count never changes a result.
#include "convcore/batch_norm.h"

#include <cmath>
#include <cstring>

#include "convcore/cpu/isa_table.h"
#include "convcore/cpu/kernels/batch_norm_kernels.h"
#include "convcore/dispatch.h"
#include "convcore/parallel.h"

namespace convcore {

namespace {

const cpu::BatchNormKernels& bn_kernels() {
  static const cpu::BatchNormKernels table =
      cpu::isa_table<cpu::BatchNormKernels>(CONVCORE_PER_ISA(fill_batch_norm_kernels));
  return table;
}

// Channels per job: at least ~16K floats of work, so tiny tensors stay on
// the calling thread.
index_t channel_grain(const BatchNormShape& s) {
  const index_t per = std::max<index_t>(1, s.N * s.L);
  return std::max<index_t>(1, (index_t(1) << 14) / per);
}

// x*a + b per channel (the normalisation folded into one FMA, as torch does).
void apply_affine(const BatchNormShape& s, const float* x, const double* mean,
                  const double* invstd, const float* w, const float* b, bool relu, float* y,
                  index_t c) {
  const double a = invstd[c] * (w ? double(w[c]) : 1.0);
  const double sh = (b ? double(b[c]) : 0.0) - mean[c] * a;
  const auto affine = bn_kernels().affine;
  for (index_t n = 0; n < s.N; ++n) {
    const index_t off = (n * s.C + c) * s.L;
    affine(s.L, x + off, float(a), float(sh), relu, y + off);
  }
}

}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* weight,
                              const float* bias, double eps, double momentum,
                              float* running_mean, float* running_var, bool relu, float* y,
                              double* mean, double* invstd) {
  const cpu::BatchNormKernels& k = bn_kernels();
  const index_t m = s.N * s.L;
  parallel_for(s.C, channel_grain(s), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      double sum = 0;
      for (index_t n = 0; n < s.N; ++n) sum += k.sum(s.L, x + (n * s.C + c) * s.L);
      const double mu = sum / double(m);
      double sq = 0;
      for (index_t n = 0; n < s.N; ++n) sq += k.sumsq_dev(s.L, x + (n * s.C + c) * s.L, mu);
      const double var = sq / double(m);
      mean[c] = mu;
      invstd[c] = 1.0 / std::sqrt(var + eps);
      if (running_mean) {
        running_mean[c] = float((1.0 - momentum) * running_mean[c] + momentum * mu);
        const double unbiased = m > 1 ? sq / double(m - 1) : var;
        running_var[c] = float((1.0 - momentum) * running_var[c] + momentum * unbiased);
      }
      apply_affine(s, x, mean, invstd, weight, bias, relu, y, c);
    }
  });
}

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* running_mean,
                             const float* running_var, const float* weight, const float* bias,
                             double eps, bool relu, float* y, double* mean, double* invstd) {
  for (index_t c = 0; c < s.C; ++c) {
    mean[c] = running_mean[c];
    invstd[c] = 1.0 / std::sqrt(double(running_var[c]) + eps);
  }
  parallel_for(s.C, channel_grain(s), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) apply_affine(s, x, mean, invstd, weight, bias, relu, y, c);
  });
}

void batch_norm_backward(const BatchNormShape& s, const float* grad_y, const float* x,
                         const float* y, const double* mean, const double* invstd,
                         const float* weight, bool training, float* grad_x, float* grad_weight,
                         float* grad_bias) {
  const cpu::BatchNormKernels& k = bn_kernels();
  const index_t m = s.N * s.L;
  // Eval-mode grad_x needs no sums.
  const bool sums = grad_weight || grad_bias || (grad_x && training);
  parallel_for(s.C, channel_grain(s), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      double gsum = 0, gdot = 0;
      if (sums)
        for (index_t n = 0; n < s.N; ++n) {
          const index_t off = (n * s.C + c) * s.L;
          k.grad_sums(s.L, grad_y + off, x + off, y ? y + off : nullptr, mean[c], &gsum, &gdot);
        }
      if (grad_weight) grad_weight[c] = float(gdot * invstd[c]);
      if (grad_bias) grad_bias[c] = float(gsum);
      if (!grad_x) continue;
      const double scale = invstd[c] * (weight ? double(weight[c]) : 1.0);
      // torch's form: gx = (g - mean(g) - (x - mean)*kk)*scale, kk = gdot*invstd^2/m.
      const double kk = gdot * invstd[c] * invstd[c] / double(m);
      const double gmean = gsum / double(m);
      for (index_t n = 0; n < s.N; ++n) {
        const index_t off = (n * s.C + c) * s.L;
        k.grad_input(s.L, grad_y + off, training ? x + off : nullptr, y ? y + off : nullptr,
                     float(mean[c]), float(kk), float(gmean), float(scale), grad_x + off);
      }
    }
  });
}

}  // namespace convcore
