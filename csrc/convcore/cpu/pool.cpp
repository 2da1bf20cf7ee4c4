// Pooling. One job per (image, channel) plane; windows clipped to the input.
#include "convcore/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "convcore/parallel.h"

namespace convcore {

namespace {
// Clipped window [h0, h1) x [w0, w1) with dilation, for output (oh, ow).
struct Window {
  index_t h0, h1, w0, w1;
};
inline index_t first_in(index_t start, index_t dil) {
  // smallest t >= 0 with start + t*dil >= 0
  return start >= 0 ? 0 : (-start + dil - 1) / dil;
}
}  // namespace

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y, index_t* ind) {
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  parallel_for(p.N * p.C, 1, [&](index_t b, index_t e) {
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const index_t i0 = first_in(hs, p.dil_h);
        for (index_t ow = 0; ow < p.OW; ++ow) {
          const index_t ws = ow * p.stride_w - p.pad_l;
          const index_t j0 = first_in(ws, p.dil_w);
          float best = -std::numeric_limits<float>::infinity();
          index_t arg = -1;
          for (index_t i = i0; i < p.kh; ++i) {
            const index_t ih = hs + i * p.dil_h;
            if (ih >= p.H) break;
            for (index_t j = j0; j < p.kw; ++j) {
              const index_t iw = ws + j * p.dil_w;
              if (iw >= p.W) break;
              const float v = xp[ih * p.W + iw];
              // NaN propagates, as in PyTorch.
              if (v > best || v != v || arg < 0) {
                if (!(best != best)) { best = v; arg = ih * p.W + iw; }
              }
            }
          }
          y[nc * ohw + oh * p.OW + ow] = best;
          if (ind) ind[nc * ohw + oh * p.OW + ow] = arg;
        }
      }
    }
  });
}

void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x, float* gx) {
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  parallel_for(p.N * p.C, 1, [&](index_t b, index_t e) {
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      float* gp = gx + nc * hw;
      std::memset(gp, 0, size_t(hw) * sizeof(float));
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const index_t i0 = first_in(hs, p.dil_h);
        for (index_t ow = 0; ow < p.OW; ++ow) {
          const index_t ws = ow * p.stride_w - p.pad_l;
          const index_t j0 = first_in(ws, p.dil_w);
          float best = -std::numeric_limits<float>::infinity();
          index_t arg = -1;
          for (index_t i = i0; i < p.kh; ++i) {
            const index_t ih = hs + i * p.dil_h;
            if (ih >= p.H) break;
            for (index_t j = j0; j < p.kw; ++j) {
              const index_t iw = ws + j * p.dil_w;
              if (iw >= p.W) break;
              const float v = xp[ih * p.W + iw];
              if (v > best || v != v || arg < 0) {
                if (!(best != best)) { best = v; arg = ih * p.W + iw; }
              }
            }
          }
          if (arg >= 0) gp[arg] += gy[nc * ohw + oh * p.OW + ow];
        }
      }
    }
  });
}

namespace {
// Divisor of one average window (PyTorch): with count_include_pad the window
// clipped to the padded input (not beyond, even in ceil mode), else the
// count of real elements.
inline index_t avg_divisor(const Pool2dParams& p, index_t hs, index_t ws) {
  if (p.count_include_pad) {
    const index_t he = std::min(hs + p.kh, p.H + p.pad_b), we = std::min(ws + p.kw, p.W + p.pad_r);
    return (he - hs) * (we - ws);
  }
  const index_t h0 = std::max<index_t>(hs, 0), w0 = std::max<index_t>(ws, 0);
  const index_t h1 = std::min(hs + p.kh, p.H), w1 = std::min(ws + p.kw, p.W);
  return std::max<index_t>(0, h1 - h0) * std::max<index_t>(0, w1 - w0);
}
}  // namespace

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  parallel_for(p.N * p.C, 1, [&](index_t b, index_t e) {
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const index_t h0 = std::max<index_t>(hs, 0), h1 = std::min(hs + p.kh, p.H);
        for (index_t ow = 0; ow < p.OW; ++ow) {
          const index_t ws = ow * p.stride_w - p.pad_l;
          const index_t w0 = std::max<index_t>(ws, 0), w1 = std::min(ws + p.kw, p.W);
          float s = 0.f;
          for (index_t ih = h0; ih < h1; ++ih)
            for (index_t iw = w0; iw < w1; ++iw) s += xp[ih * p.W + iw];
          const index_t d = avg_divisor(p, hs, ws);
          y[nc * ohw + oh * p.OW + ow] = d > 0 ? s / float(d) : 0.f;
        }
      }
    }
  });
}

void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  parallel_for(p.N * p.C, 1, [&](index_t b, index_t e) {
    for (index_t nc = b; nc < e; ++nc) {
      float* gp = gx + nc * hw;
      std::memset(gp, 0, size_t(hw) * sizeof(float));
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const index_t h0 = std::max<index_t>(hs, 0), h1 = std::min(hs + p.kh, p.H);
        for (index_t ow = 0; ow < p.OW; ++ow) {
          const index_t ws = ow * p.stride_w - p.pad_l;
          const index_t w0 = std::max<index_t>(ws, 0), w1 = std::min(ws + p.kw, p.W);
          const index_t d = avg_divisor(p, hs, ws);
          if (d <= 0) continue;
          const float g = gy[nc * ohw + oh * p.OW + ow] / float(d);
          for (index_t ih = h0; ih < h1; ++ih)
            for (index_t iw = w0; iw < w1; ++iw) gp[ih * p.W + iw] += g;
        }
      }
    }
  });
}

void global_avg_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y) {
  parallel_for(N * C, 16, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float* r = x + i * HW;
      float s = 0.f;
      for (index_t j = 0; j < HW; ++j) s += r[j];
      y[i] = s / float(HW);
    }
  });
}

void global_max_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y) {
  parallel_for(N * C, 16, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float* r = x + i * HW;
      float m = r[0];
      for (index_t j = 1; j < HW; ++j) m = (r[j] > m || r[j] != r[j]) && m == m ? r[j] : m;
      y[i] = m;
    }
  });
}

void global_avg_pool2d_backward(index_t N, index_t C, index_t HW, const float* gy, float* gx) {
  parallel_for(N * C, 16, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float g = gy[i] / float(HW);
      std::fill(gx + i * HW, gx + (i + 1) * HW, g);
    }
  });
}

void global_max_pool2d_backward(index_t N, index_t C, index_t HW, const float* gy, const float* x,
                                float* gx) {
  parallel_for(N * C, 16, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float* r = x + i * HW;
      index_t arg = 0;
      for (index_t j = 1; j < HW; ++j)
        if ((r[j] > r[arg] || r[j] != r[j]) && r[arg] == r[arg]) arg = j;
      std::fill(gx + i * HW, gx + (i + 1) * HW, 0.f);
      gx[i * HW + arg] = gy[i];
    }
  });
}

}  // namespace convcore
