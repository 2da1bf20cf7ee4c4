// C++-only smoke test of the library against naive double-precision loops.
// Built with -DCONVCORE_PYTHON=OFF -DCONVCORE_CPP_TESTS=ON; it is how the
// portable path is checked on targets without a Python build here (aarch64
// under qemu, see .ci/aarch64-check.sh). Exit status 0 = all checks passed.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "convcore/activation.h"
#include "convcore/conv2d.h"
#include "convcore/dispatch.h"
#include "convcore/pool.h"

using namespace convcore;

namespace {

int failures = 0;

void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want) {
  double scale = 1.0, err = 0.0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) err = std::max(err, std::fabs(got[i] - want[i]));
  const bool ok = got.size() == want.size() && err <= 2e-4 * scale;
  std::printf("%-44s %s (max err %.3g, scale %.3g)\n", what, ok ? "ok" : "FAIL", err, scale);
  if (!ok) ++failures;
}

std::vector<float> randn(size_t n, std::mt19937& g) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& e : v) e = d(g);
  return v;
}

// Visits (n, k, oh, ow, c, i, j, ih, iw) for every in-bounds tap.
template <typename F>
void taps(const Conv2dParams& p, F&& f) {
  for (index_t n = 0; n < p.N; ++n)
    for (index_t k = 0; k < p.K; ++k) {
      const index_t g = k / p.Kg();
      for (index_t oh = 0; oh < p.OH; ++oh)
        for (index_t ow = 0; ow < p.OW; ++ow)
          for (index_t c = 0; c < p.Cg(); ++c)
            for (index_t i = 0; i < p.kh; ++i)
              for (index_t j = 0; j < p.kw; ++j) {
                const index_t ih = oh * p.stride_h - p.pad_t + i * p.dil_h;
                const index_t iw = ow * p.stride_w - p.pad_l + j * p.dil_w;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                const index_t xi = ((n * p.C + g * p.Cg() + c) * p.H + ih) * p.W + iw;
                const index_t wi = ((k * p.Cg() + c) * p.kh + i) * p.kw + j;
                const index_t yi = ((n * p.K + k) * p.OH + oh) * p.OW + ow;
                f(xi, wi, yi);
              }
    }
}

void check_conv(const char* name, Conv2dParams p, std::mt19937& rng) {
  p.finalize(name);
  auto x = randn(size_t(p.x_size()), rng), w = randn(size_t(p.w_size()), rng);
  auto b = randn(size_t(p.K), rng), gy = randn(size_t(p.y_size()), rng);
  std::vector<double> y_ref(size_t(p.y_size())), gx_ref(x.size()), gw_ref(w.size());
  for (index_t yi = 0; yi < p.y_size(); ++yi) y_ref[size_t(yi)] = b[size_t((yi / (p.OH * p.OW)) % p.K)];
  taps(p, [&](index_t xi, index_t wi, index_t yi) {
    y_ref[size_t(yi)] += double(x[size_t(xi)]) * w[size_t(wi)];
    gx_ref[size_t(xi)] += double(gy[size_t(yi)]) * w[size_t(wi)];
    gw_ref[size_t(wi)] += double(gy[size_t(yi)]) * x[size_t(xi)];
  });
  for (auto& v : y_ref) v = std::max(v, 0.0);  // fused ReLU
  Epilogue ep = Epilogue::relu();
  ep.bias = b.data();
  std::vector<float> y(y_ref.size()), gx(x.size()), gw(w.size()), gb(size_t(p.K));
  conv2d_forward(p, x.data(), w.data(), y.data(), ep);
  conv2d_backward_input(p, gy.data(), w.data(), gx.data());
  conv2d_backward_weight(p, gy.data(), x.data(), gw.data(), gb.data());
  char label[96];
  std::snprintf(label, sizeof label, "%s forward", name);
  expect_close(label, y, y_ref);
  std::snprintf(label, sizeof label, "%s grad_input", name);
  expect_close(label, gx, gx_ref);
  std::snprintf(label, sizeof label, "%s grad_weight", name);
  expect_close(label, gw, gw_ref);
}

Conv2dParams conv(index_t N, index_t C, index_t H, index_t W, index_t K, index_t k, index_t s,
                  index_t pad, index_t groups, index_t dil = 1) {
  Conv2dParams p;
  p.N = N; p.C = C; p.H = H; p.W = W; p.K = K; p.kh = p.kw = k;
  p.stride_h = p.stride_w = s; p.pad_t = p.pad_l = p.pad_b = p.pad_r = pad;
  p.groups = groups; p.dil_h = p.dil_w = dil;
  return p;
}

void check_pool(std::mt19937& rng) {
  Pool2dParams p;
  p.N = 2; p.C = 3; p.H = 11; p.W = 9; p.kh = p.kw = 3; p.stride_h = p.stride_w = 2;
  p.pad_t = p.pad_l = p.pad_b = p.pad_r = 1; p.ceil_mode = true; p.count_include_pad = false;
  p.finalize("smoke pool");
  auto x = randn(size_t(p.x_size()), rng);
  std::vector<float> ymax(size_t(p.y_size())), yavg(ymax.size());
  std::vector<double> rmax(ymax.size()), ravg(ymax.size());
  max_pool2d_forward(p, x.data(), ymax.data(), nullptr);
  avg_pool2d_forward(p, x.data(), yavg.data());
  for (index_t nc = 0; nc < p.N * p.C; ++nc)
    for (index_t oh = 0; oh < p.OH; ++oh)
      for (index_t ow = 0; ow < p.OW; ++ow) {
        double m = -INFINITY, s = 0;
        int cnt = 0;
        for (index_t i = 0; i < p.kh; ++i)
          for (index_t j = 0; j < p.kw; ++j) {
            const index_t ih = oh * 2 - 1 + i, iw = ow * 2 - 1 + j;
            if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
            const double v = x[size_t((nc * p.H + ih) * p.W + iw)];
            m = std::max(m, v); s += v; ++cnt;
          }
        const size_t o = size_t((nc * p.OH + oh) * p.OW + ow);
        rmax[o] = m; ravg[o] = s / cnt;
      }
  expect_close("max_pool2d 3x3/2 pad 1 ceil", ymax, rmax);
  expect_close("avg_pool2d 3x3/2 pad 1 ceil, exclude pad", yavg, ravg);
}

}  // namespace

int main() {
  std::printf("convcore smoke test, ISA %s\n", kernels().isa);
  std::mt19937 rng(42);
  check_conv("conv 3x3 s1 p1", conv(2, 8, 10, 9, 12, 3, 1, 1, 1), rng);
  check_conv("conv 1x1", conv(1, 16, 7, 7, 24, 1, 1, 0, 1), rng);
  check_conv("conv 5x5 s2 p2 groups 2 dil 1", conv(1, 6, 13, 11, 8, 5, 2, 2, 2), rng);
  check_conv("conv 3x3 dil 2 p2", conv(1, 4, 12, 12, 5, 3, 1, 2, 1, 2), rng);
  check_conv("conv 3x3 s1 32->32 (winograd size)", conv(1, 32, 12, 12, 32, 3, 1, 1, 1), rng);
  check_conv("conv 3x3 s1 64->64 on 7x7 (narrow)", conv(1, 64, 7, 7, 64, 3, 1, 1, 1), rng);
  check_conv("depthwise 3x3 s1", conv(2, 8, 9, 10, 8, 3, 1, 1, 8), rng);
  check_conv("depthwise 3x3 s2 mult 2", conv(1, 4, 11, 11, 8, 3, 2, 1, 4), rng);
  check_pool(rng);
  std::vector<float> r = {-1.f, 0.f, 2.f, -3.f, 4.f};
  relu_forward(index_t(r.size()), r.data(), r.data());
  expect_close("relu in place", r, {0, 0, 2, 0, 4});
  std::printf(failures ? "%d FAILED\n" : "all passed\n", failures);
  return failures ? 1 : 0;
}
