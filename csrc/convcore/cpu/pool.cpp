// Pooling, NCHW float32. One job per (image, channel) plane.
//
// Forward max (without indices) and average pooling with dilation 1,
// stride 1 or 2 and kernel width 2 or 3 (every pooling layer of the usual
// CNNs) run the fused plane kernel (cpu/kernels/pool_fwd.h) on the job pool.
// Other geometries, avg backward and the argmax paths run row by row: a
// vertical pass combines the window's input rows into a padded row buffer
// (contiguous vector ops), a horizontal pass reduces along it (vectorised for
// stride 1 and 2). The buffer's padding holds the identity (-inf / 0), so the
// horizontal pass needs no bounds checks. The divisor of an average window
// is separable: rows(oh) * cols(ow).
//
// Max with indices and max backward follow PyTorch's scan exactly: windows in
// row-major order, a value wins if it is greater than the current max or NaN,
// so the first maximum (or the last NaN) is the one reported / routed to.
#include "convcore/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "convcore/cpu/job_pool.h"
#include "convcore/cpu/kernels/pool_fwd.h"
#include "convcore/dispatch.h"
#include "convcore/parallel.h"
#include "convcore/threading.h"

#if CONVCORE_HAVE_X86
#include <xmmintrin.h>
#endif

namespace convcore {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Planes per parallel job: at least ~128K floats of input each. Waking the
// second thread costs tens of microseconds on a quiet machine and a
// scheduling slice (~0.5 ms measured) when the cores are busy, more than a
// small map takes on one thread (64x55x55 max pool: 0.07 ms), so small maps
// run inline.
inline index_t planes_per_job(index_t plane_elems) {
  return std::max<index_t>(1, (index_t(1) << 17) / std::max<index_t>(plane_elems, 1));
}

// Valid taps [t0, t1) of a window starting at `start` with dilation `dil`
// over an axis of length n.
struct Taps {
  index_t t0, t1;
};
inline Taps taps_in(index_t start, index_t k, index_t dil, index_t n) {
  Taps t;
  t.t0 = start >= 0 ? 0 : (-start + dil - 1) / dil;
  t.t1 = start + (k - 1) * dil < n ? k : (n - 1 - start) / dil + 1;
  if (start > n - 1) t.t1 = 0;
  if (t.t1 < t.t0) t.t1 = t.t0;
  return t;
}

// Row buffer: [pad_l identity][W values][identity up to every tap + slack].
index_t row_len(const Pool2dParams& p) {
  const index_t reach = (p.OW - 1) * p.stride_w + (p.kw - 1) * p.dil_w + 1;
  return std::max(p.pad_l + p.W + p.pad_r, reach) + 2 * 16 + 1;
}

// Divisor factor of one axis (PyTorch): with count_include_pad the window
// clipped to the padded extent, else the number of real elements.
inline index_t axis_count(const Pool2dParams& p, index_t start, index_t k, index_t n,
                          index_t pad_end) {
  if (p.count_include_pad) return std::min(start + k, n + pad_end) - start;
  return std::max<index_t>(0, std::min(start + k, n) - std::max<index_t>(start, 0));
}

// Column counts of the average windows (the same for every plane and row).
std::vector<float> col_counts(const Pool2dParams& p) {
  std::vector<float> wc(size_t(p.OW));
  for (index_t ow = 0; ow < p.OW; ++ow)
    wc[size_t(ow)] = float(axis_count(p, ow * p.stride_w - p.pad_l, p.kw, p.W, p.pad_r));
  return wc;
}

// PyTorch's argmax of one window (flat h*W+w), or -1 if it has no element.
inline index_t window_argmax(const Pool2dParams& p, const float* xp, index_t hs, const Taps& th,
                             index_t ws, const Taps& tw, float* best_out) {
  if (th.t0 >= th.t1 || tw.t0 >= tw.t1) {
    *best_out = kNegInf;
    return -1;
  }
  index_t arg = (hs + th.t0 * p.dil_h) * p.W + ws + tw.t0 * p.dil_w;
  float best = kNegInf;
  for (index_t i = th.t0; i < th.t1; ++i) {
    const index_t ih = hs + i * p.dil_h;
    const float* r = xp + ih * p.W;
    for (index_t j = tw.t0; j < tw.t1; ++j) {
      const index_t iw = ws + j * p.dil_w;
      const float v = r[iw];
      if (v > best || v != v) {
        best = v;
        arg = ih * p.W + iw;
      }
    }
  }
  *best_out = best;
  return arg;
}

std::vector<Taps> col_taps(const Pool2dParams& p) {
  std::vector<Taps> t(size_t(p.OW));
  for (index_t ow = 0; ow < p.OW; ++ow)
    t[size_t(ow)] = taps_in(ow * p.stride_w - p.pad_l, p.kw, p.dil_w, p.W);
  return t;
}

// Runs PyTorch's argmax scan over every window of every plane, one output
// row at a time through the vectorised row kernel, and hands each row's
// (values, flat indices) to `emit(nc, oh, y_row, arg_row)`. Indices are -1
// for windows without any real element.
template <typename Emit>
void max_pool_argmax(const Pool2dParams& p, const float* x, bool want_values, Emit&& emit) {
  const index_t hw = p.H * p.W, L = row_len(p);
  const std::vector<Taps> ct = col_taps(p);
  std::vector<int> first_col(size_t(p.OW) + 16);
  std::vector<index_t> empty_cols;
  for (index_t ow = 0; ow < p.OW; ++ow) {
    const Taps& t = ct[size_t(ow)];
    if (t.t0 >= t.t1) empty_cols.push_back(ow);
    first_col[size_t(ow)] = int(ow * p.stride_w - p.pad_l + t.t0 * p.dil_w);
  }
  const KernelTable& kt = kernels();
  parallel_for(p.N * p.C, planes_per_job(p.H * p.W), [&](index_t b, index_t e) {
    // the plane, each row padded with -inf on both sides
    std::vector<float> plane(size_t(p.H * L), kNegInf);
    std::vector<float> yrow(size_t(p.OW) + 16);  // + 16: narrow_ok slack
    std::vector<int> arow(size_t(p.OW) + 16);
    PoolArgmaxRow r;
    r.buf = plane.data(); r.pitch = L; r.W = p.W; r.pad_l = p.pad_l;
    r.OW = p.OW; r.sw = p.stride_w; r.kw = p.kw; r.dw = p.dil_w;
    r.dil_h = p.dil_h; r.first_col = first_col.data();
    r.y = want_values ? yrow.data() : nullptr;
    r.arg = arow.data();
    r.narrow_ok = true;  // row_len's slack, yrow/arow's + 16
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      for (index_t ih = 0; ih < p.H; ++ih)
        std::memcpy(plane.data() + ih * L + p.pad_l, xp + ih * p.W, size_t(p.W) * sizeof(float));
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const Taps th = taps_in(hs, p.kh, p.dil_h, p.H);
        if (th.t0 >= th.t1) {
          std::fill(yrow.begin(), yrow.end(), kNegInf);
          std::fill(arow.begin(), arow.end(), -1);
        } else {
          r.ih0 = hs + th.t0 * p.dil_h;
          r.nrows = th.t1 - th.t0;
          kt.pool_argmax_row(r);
          for (index_t ow : empty_cols) arow[size_t(ow)] = -1;
        }
        emit(nc, oh, yrow.data(), arow.data());
      }
    }
  });
}

// Planes of 2^31 elements or more: the same scan, scalar, 64-bit indices.
void max_pool_indices_scalar(const Pool2dParams& p, const float* x, float* y, index_t* ind,
                             const float* gy, float* gx) {
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  const std::vector<Taps> ct = col_taps(p);
  parallel_for(p.N * p.C, planes_per_job(p.H * p.W), [&](index_t b, index_t e) {
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      if (gx) std::memset(gx + nc * hw, 0, size_t(hw) * sizeof(float));
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const Taps th = taps_in(hs, p.kh, p.dil_h, p.H);
        for (index_t ow = 0; ow < p.OW; ++ow) {
          float best;
          const index_t o = nc * ohw + oh * p.OW + ow;
          const index_t arg = window_argmax(p, xp, hs, th, ow * p.stride_w - p.pad_l,
                                            ct[size_t(ow)], &best);
          if (y) y[o] = best;
          if (ind) ind[o] = arg;
          if (gx && arg >= 0) gx[nc * hw + arg] += gy[o];
        }
      }
    }
  });
}

bool small_planes(const Pool2dParams& p) { return p.H * p.W < (index_t(1) << 31) - 1; }

void max_pool_indices(const Pool2dParams& p, const float* x, float* y, index_t* ind) {
  if (!small_planes(p)) return max_pool_indices_scalar(p, x, y, ind, nullptr, nullptr);
  const index_t ohw = p.OH * p.OW;
  max_pool_argmax(p, x, true, [&](index_t nc, index_t oh, const float* yr, const int* ar) {
    const index_t o = nc * ohw + oh * p.OW;
    std::memcpy(y + o, yr, size_t(p.OW) * sizeof(float));
    for (index_t ow = 0; ow < p.OW; ++ow) ind[o + ow] = ar[ow];
  });
}


// ---- fused forward (cpu/kernels/pool_fwd.h) ----


// The fused kernel's copy for the ISA of kernels() (not a KernelTable entry).

// Max pooling only selects inputs, so it runs with DAZ off: the plain x86
// max would otherwise read a subnormal input as 0 and return 0 in its place
// (PyTorch returns the subnormal itself).
struct DazOff {
#if CONVCORE_HAVE_X86
  unsigned saved = _mm_getcsr();
  explicit DazOff(bool on) {
    if (on) _mm_setcsr(saved & ~0x40u);
  }
  ~DazOff() { _mm_setcsr(saved); }
#else
  explicit DazOff(bool) {}
#endif
};

// Runs f(b, e) over plane ranges on the job pool (run_jobs: the caller never
// waits for a worker that has not woken, unlike an OpenMP fork-join, which
// costs up to a scheduler slice on a busy machine). Jobs of a few planes,
// about 8 per thread, so a late worker still finds some; small maps run inline.
template <typename F>
void for_plane_jobs(index_t planes, index_t plane_floats, F&& f) {
  const index_t total = planes * std::max<index_t>(plane_floats, 1);
  const int threads = get_num_threads();
  if (threads <= 1 || planes <= 1 || total < (index_t(1) << 14)) {
    DenormalGuard g;
    f(index_t(0), planes);
    return;
  }
  const index_t per_job = std::max<index_t>(
      1, std::max<index_t>(total / (8 * index_t(threads)), index_t(1) << 12) / plane_floats);
  const index_t jobs = (planes + per_job - 1) / per_job;
  run_jobs(jobs, [&](index_t j) { f(j * per_job, std::min(planes, (j + 1) * per_job)); });
}

bool fused_forward(const Pool2dParams& p, const float* x, float* y, bool is_max) {
  if (!cpu::pool_fwd_supported(p.kw, p.stride_w, p.dil_h, p.dil_w)) return false;
  std::vector<cpu::PoolRowTaps> rows(size_t(p.OH));
  for (index_t oh = 0; oh < p.OH; ++oh) {
    const index_t hs = oh * p.stride_h - p.pad_t;
    const Taps t = taps_in(hs, p.kh, 1, p.H);
    cpu::PoolRowTaps& r = rows[size_t(oh)];
    r.ih0 = hs + t.t0;
    r.n = t.t1 - t.t0;
    r.count = float(axis_count(p, hs, p.kh, p.H, p.pad_b));
  }
  std::vector<float> wc;
  if (!is_max) wc = col_counts(p);
  cpu::PoolFwdArgs a;
  a.x = x; a.y = y; a.planes = p.N * p.C;
  a.H = p.H; a.W = p.W; a.OH = p.OH; a.OW = p.OW;
  a.kw = p.kw; a.sw = p.stride_w; a.pl = p.pad_l;
  a.is_max = is_max;
  a.rows = rows.data();
  a.col_count = wc.data();
  const auto fn = kernels().pool_fwd_planes;
  for_plane_jobs(p.N * p.C, p.H * p.W, [&](index_t b, index_t e) {
    DazOff daz(is_max);
    fn(a, b, e);
  });
  return true;
}

}  // namespace

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y, index_t* ind) {
  if (ind) {
    max_pool_indices(p, x, y, ind);
    return;
  }
  if (fused_forward(p, x, y, true)) return;
  if (p.OW < kernels().simd_width && p.stride_w <= 2 && small_planes(p)) {
    // Rows narrower than one vector (LeNet's 12- and 4-wide outputs): the
    // argmax kernel runs them as one vector block; the row-max one is scalar there.
    const index_t ohw = p.OH * p.OW;
    max_pool_argmax(p, x, true, [&](index_t nc, index_t oh, const float* yr, const int*) {
      std::memcpy(y + nc * ohw + oh * p.OW, yr, size_t(p.OW) * sizeof(float));
    });
    return;
  }
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW, L = row_len(p);
  const KernelTable& kt = kernels();
  parallel_for(p.N * p.C, planes_per_job(p.H * p.W), [&](index_t b, index_t e) {
    std::vector<float> row(size_t(L), kNegInf);
    float* mid = row.data() + p.pad_l;
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      float* yp = y + nc * ohw;
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const Taps th = taps_in(hs, p.kh, p.dil_h, p.H);
        float* yr = yp + oh * p.OW;
        if (th.t0 >= th.t1) {
          std::fill(yr, yr + p.OW, kNegInf);
          continue;
        }
        kt.pool_vmax_rows(p.W, xp + (hs + th.t0 * p.dil_h) * p.W, p.dil_h * p.W, th.t1 - th.t0,
                          mid);
        kt.pool_hmax(p.OW, p.stride_w, p.kw, p.dil_w, row.data(), yr);
      }
    }
  });
}

void max_pool2d_backward(const Pool2dParams& p, const float* gy, const float* x, float* gx) {
  if (!small_planes(p)) return max_pool_indices_scalar(p, x, nullptr, nullptr, gy, gx);
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  // Each plane is zeroed by the job that owns it, just before its first row.
  max_pool_argmax(p, x, false, [&](index_t nc, index_t oh, const float*, const int* ar) {
    float* g = gx + nc * hw;
    if (oh == 0) std::memset(g, 0, size_t(hw) * sizeof(float));
    const float* gr = gy + nc * ohw + oh * p.OW;
    for (index_t ow = 0; ow < p.OW; ++ow)
      if (ar[ow] >= 0) g[ar[ow]] += gr[ow];
  });
}

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  if (fused_forward(p, x, y, false)) return;
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW, L = row_len(p);
  const std::vector<float> wc = col_counts(p);
  const KernelTable& kt = kernels();
  parallel_for(p.N * p.C, planes_per_job(p.H * p.W), [&](index_t b, index_t e) {
    std::vector<float> row(size_t(L), 0.f), div(size_t(p.OW));
    float* mid = row.data() + p.pad_l;
    for (index_t nc = b; nc < e; ++nc) {
      const float* xp = x + nc * hw;
      float* yp = y + nc * ohw;
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const index_t h0 = std::max<index_t>(hs, 0), h1 = std::min(hs + p.kh, p.H);
        float* yr = yp + oh * p.OW;
        if (h0 >= h1) {  // window rows all padding: the sum is 0
          std::fill(yr, yr + p.OW, 0.f);
          continue;
        }
        const float hc = float(axis_count(p, hs, p.kh, p.H, p.pad_b));
        for (index_t ow = 0; ow < p.OW; ++ow) {
          const float d = hc * wc[size_t(ow)];
          div[size_t(ow)] = d > 0.f ? d : 1.f;  // no real element: 0 / 1
        }
        kt.pool_vadd_rows(p.W, xp + h0 * p.W, p.W, h1 - h0, mid);
        kt.pool_havg(p.OW, p.stride_w, p.kw, row.data(), div.data(), yr);
      }
    }
  });
}

// floor(a / b) for b > 0 and any sign of a
inline index_t floor_div(index_t a, index_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Average backward as a gather (every grad_x element written once, no
// scatter): grad_out is first divided by each window's divisor; input row
// ih then sums the divided rows of the windows that cover it (vertical),
// and the horizontal pass gathers along that row (kernels().pool_avg_hgather).
void avg_pool2d_backward(const Pool2dParams& p, const float* gy, float* gx) {
  const index_t hw = p.H * p.W, ohw = p.OH * p.OW;
  const std::vector<float> wc = col_counts(p);
  const KernelTable& kt = kernels();
  const index_t pre = p.kw + 2, len = pre + p.OW + p.kw + 2 * 16 + 4;
  const bool empty_window = std::any_of(wc.begin(), wc.end(), [](float c) { return c <= 0.f; });
  parallel_for(p.N * p.C, planes_per_job(p.H * p.W), [&](index_t b, index_t e) {
    std::vector<float> gdiv(static_cast<size_t>(ohw)), row(static_cast<size_t>(len), 0.f);
    float* mid = row.data() + pre;
    for (index_t nc = b; nc < e; ++nc) {
      const float* gp = gy + nc * ohw;
      for (index_t oh = 0; oh < p.OH; ++oh) {
        const index_t hs = oh * p.stride_h - p.pad_t;
        const float hc = float(axis_count(p, hs, p.kh, p.H, p.pad_b));
        const float* gr = gp + oh * p.OW;
        float* dr = gdiv.data() + oh * p.OW;
        for (index_t ow = 0; ow < p.OW; ++ow) dr[ow] = gr[ow] / (hc * wc[size_t(ow)]);
        if (hc <= 0.f)  // windows without a real element pass nothing
          std::fill(dr, dr + p.OW, 0.f);
        else if (empty_window)
          for (index_t ow = 0; ow < p.OW; ++ow)
            if (wc[size_t(ow)] <= 0.f) dr[ow] = 0.f;
      }
      float* gxp = gx + nc * hw;
      for (index_t ih = 0; ih < p.H; ++ih) {
        const index_t lo = std::max<index_t>(0, floor_div(ih + p.pad_t - p.kh, p.stride_h) + 1);
        const index_t hi = std::min(p.OH - 1, floor_div(ih + p.pad_t, p.stride_h));
        float* out = gxp + ih * p.W;
        if (lo > hi) {
          std::fill(out, out + p.W, 0.f);
          continue;
        }
        std::memcpy(mid, gdiv.data() + lo * p.OW, size_t(p.OW) * sizeof(float));
        for (index_t oh = lo + 1; oh <= hi; ++oh) kt.pool_vadd(p.OW, gdiv.data() + oh * p.OW, mid);
        kt.pool_avg_hgather(p.W, p.stride_w, p.kw, p.pad_l, mid, out);
      }
    }
  });
}

void global_avg_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y) {
  const auto sum = kernels().sum;
  parallel_for(N * C, planes_per_job(HW), [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) y[i] = sum(HW, x + i * HW) / float(HW);
  });
}

void global_max_pool2d_forward(index_t N, index_t C, index_t HW, const float* x, float* y) {
  const auto mx = kernels().max_nan;
  parallel_for(N * C, planes_per_job(HW), [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) y[i] = mx(HW, x + i * HW);
  });
}

void global_avg_pool2d_backward(index_t N, index_t C, index_t HW, const float* gy, float* gx) {
  parallel_for(N * C, planes_per_job(HW), [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float g = gy[i] / float(HW);
      std::fill(gx + i * HW, gx + (i + 1) * HW, g);
    }
  });
}

void global_max_pool2d_backward(index_t N, index_t C, index_t HW, const float* gy, const float* x,
                                float* gx) {
  const auto mx = kernels().max_nan;
  parallel_for(N * C, planes_per_job(HW), [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      const float* r = x + i * HW;
      // As max_pool2d over the whole plane: the first maximum, or the last NaN.
      const float m = mx(HW, r);
      index_t arg = 0;
      if (m != m) {
        for (index_t j = HW - 1; j >= 0; --j)
          if (r[j] != r[j]) { arg = j; break; }
      } else {
        for (index_t j = 0; j < HW; ++j)
          if (r[j] == m) { arg = j; break; }
      }
      std::fill(gx + i * HW, gx + (i + 1) * HW, 0.f);
      gx[i * HW + arg] = gy[i];
    }
  });
}

}  // namespace convcore
