// Host emulation of convcore's CUDA kernels, for machines without a GPU.
//
// The kernels' index math lives in __host__ __device__ functions (the igemm
// block body, the conv loaders/stores, the depthwise and pooling per-element
// bodies). This program runs that same code on the CPU -- the igemm block
// with one std::thread per CUDA thread and a real barrier for
// __syncthreads() -- and compares every result with convcore's CPU kernels.
// It checks tiling, bounds, padding/stride/dilation/groups handling and
// split-K; it cannot check what only a GPU does (warp shuffles, tensor-core
// wmma, atomics under contention, launch configuration, memory model).
//
// Built by cmake with -DCONVCORE_CUDA_HOST_CHECK=ON (see .ci/cuda-build.sh).
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convcore/conv2d.h"
#include "convcore/cuda/conv2d_loaders.cuh"
#include "convcore/cuda/depthwise.cuh"
#include "convcore/cuda/igemm.cuh"
#include "convcore/cuda/igemm_tf32.cuh"
#include "convcore/cuda/pool_ops.cuh"
#include "convcore/pool.h"

using namespace convcore;
using namespace convcore::cuda::detail;

namespace {

int g_failures = 0, g_checks = 0;

void check_close(const std::string& what, const std::vector<float>& got,
                 const std::vector<float>& ref, float rtol = 1e-4f) {
  ++g_checks;
  float scale = 1.f;
  for (float v : ref) scale = std::max(scale, std::fabs(v));
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(ref[i]);
    if (!both_nan && !(std::fabs(got[i] - ref[i]) <= rtol * scale)) {
      if (!bad) first = i;
      ++bad;
    }
  }
  if (got.size() != ref.size() || bad) {
    ++g_failures;
    std::printf("FAIL %s: %zu/%zu differ (first at %zu: got %g, want %g)\n", what.c_str(), bad,
                ref.size(), first, bad ? got[first] : 0.f, bad ? ref[first] : 0.f);
  } else {
    std::printf("ok   %s\n", what.c_str());
  }
}

template <class T>
void check_equal(const std::string& what, const std::vector<T>& got, const std::vector<T>& ref) {
  ++g_checks;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    if (!(got[i] == ref[i]) && !(std::isnan(double(got[i])) && std::isnan(double(ref[i])))) ++bad;
  if (bad) {
    ++g_failures;
    std::printf("FAIL %s: %zu/%zu differ\n", what.c_str(), bad, ref.size());
  } else {
    std::printf("ok   %s\n", what.c_str());
  }
}

std::vector<float> randn(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// A reusable barrier for the NT emulated threads of one block.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lk(mu_);
    const long gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return gen_ != gen; });
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_, count_ = 0;
  long gen_ = 0;
};

struct HostSync {
  Barrier* b;
  void operator()() const { b->wait(); }
};

// Runs igemm_f32_block over the whole grid: NT threads execute every block in
// turn (a barrier between blocks, since they share the tiles).
template <int BM, int BN, int BK, int TM, int TN, class L, class S>
void emulate_igemm(const L& ld, const S& st, int M, int N, int Kd, int G, int splits) {
  constexpr int NT = (BM / TM) * (BN / TN);
  std::vector<float> As(2 * BK * BM), Bs(2 * BK * BN);
  auto* as = reinterpret_cast<float(*)[BK][BM]>(As.data());
  auto* bs = reinterpret_cast<float(*)[BK][BN]>(Bs.data());
  const int gx = (N + BN - 1) / BN, gy = (M + BM - 1) / BM, gz = G * splits;
  std::vector<int2> table(L::kTable ? Kd : 0);
  Barrier bar(NT);
  std::vector<std::thread> threads;
  for (int t = 0; t < NT; ++t)
    threads.emplace_back([&, t] {
      for (int bz = 0; bz < gz; ++bz)
        for (int by = 0; by < gy; ++by)
          for (int bx = 0; bx < gx; ++bx) {
            igemm_f32_block<BM, BN, BK, TM, TN>(ld, st, M, N, Kd, splits, t, bx, by, bz, as, bs,
                                                table.data(), HostSync{&bar});
            bar.wait();
          }
    });
  for (auto& th : threads) th.join();
}

// wmma stand-in for the TF32 kernel: each emulated thread holds whole 16x16
// fragments (a warp's 32 threads compute the same values), lane 0 stores.
// Loads/stores also check wmma's rules: 256-bit aligned pointers (relative
// to the 128-byte aligned shared buffer) and ldm a multiple of 4 floats.
// TF32 truncation is not emulated: this checks indexing, with FP32 tolerance.
struct HostTcOps {
  struct FragA { float v[16][8]; };
  struct FragB { float v[8][16]; };
  struct FragC { float v[16][16]; };
  int lane;
  Barrier* block;
  Barrier* warp;
  const float* base;
  std::atomic<int>* misaligned;
  void check(const float* p, int ldm) const {
    if (((p - base) * sizeof(float)) % 32 != 0 || ldm % 4 != 0) ++*misaligned;
  }
  // cp.async stand-ins: synchronous copies (zero-filled when !ok), so the
  // pipeline's waits are not exercised here (the GPU tests do that).
  void cp4(float* dst, const float* src, bool ok) const { *dst = ok ? *src : 0.f; }
  void cp16(float* dst, const float* src, bool ok) const {
    if (((dst - base) * sizeof(float)) % 16 != 0 ||
        reinterpret_cast<std::uintptr_t>(src) % 16 != 0)
      ++*misaligned;
    for (int i = 0; i < 4; ++i) dst[i] = ok ? src[i] : 0.f;
  }
  void commit() const {}
  template <int N>
  void wait() const {}
  void zero(FragC& c) const { std::memset(c.v, 0, sizeof c.v); }
  void load_a(FragA& f, const float* p, int ldm) const {
    check(p, ldm);
    for (int i = 0; i < 16; ++i)
      for (int k = 0; k < 8; ++k) f.v[i][k] = p[i * ldm + k];
  }
  void load_b(FragB& f, const float* p, int ldm) const {
    check(p, ldm);
    for (int k = 0; k < 8; ++k)
      for (int j = 0; j < 16; ++j) f.v[k][j] = p[k * ldm + j];
  }
  void mma(FragC& c, const FragA& a, const FragB& b) const {
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        float s = c.v[i][j];
        for (int k = 0; k < 8; ++k) s += a.v[i][k] * b.v[k][j];
        c.v[i][j] = s;
      }
  }
  void store(float* p, const FragC& c, int ldm) const {
    check(p, ldm);
    if (lane == 0)
      for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) p[i * ldm + j] = c.v[i][j];
  }
  void sync() const { block->wait(); }
  void syncwarp() const { warp->wait(); }
};

std::atomic<int> g_misaligned{0};

template <int BM, class L, class S>
void emulate_tf32(const L& ld, const S& st, int M, int N, int Kd, int G, int splits) {
  constexpr int NT = kTcThreads;
  constexpr size_t bytes = (tc_smem_floats<BM>() * sizeof(float) + 127) / 128 * 128;
  float* smem = static_cast<float*>(std::aligned_alloc(128, bytes));
  const int gx = (N + kTcBN - 1) / kTcBN, gy = (M + BM - 1) / BM;
  std::vector<int2> table(L::kTable ? Kd : 0);
  Barrier bar(NT);
  std::vector<std::unique_ptr<Barrier>> warps;
  for (int w = 0; w < NT / 32; ++w) warps.emplace_back(new Barrier(32));
  std::vector<std::thread> threads;
  for (int t = 0; t < NT; ++t)
    threads.emplace_back([&, t] {
      HostTcOps ops{t % 32, &bar, warps[t / 32].get(), smem, &g_misaligned};
      for (int bz = 0; bz < G * splits; ++bz)
        for (int by = 0; by < gy; ++by)
          for (int bx = 0; bx < gx; ++bx) {
            igemm_tf32_block<BM>(ld, st, M, N, Kd, splits, t, bx, by, bz, smem, table.data(),
                                 ops);
            bar.wait();
          }
    });
  for (auto& th : threads) th.join();
  std::free(smem);
}

struct ConvCase {
  index_t N, C, H, W, K, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
};

Conv2dParams params(const ConvCase& c) {
  Conv2dParams p;
  p.N = c.N; p.C = c.C; p.H = c.H; p.W = c.W; p.K = c.K; p.kh = c.kh; p.kw = c.kw;
  p.stride_h = c.sh; p.stride_w = c.sw; p.pad_t = c.pt; p.pad_l = c.pl; p.pad_b = c.pb;
  p.pad_r = c.pr; p.dil_h = c.dh; p.dil_w = c.dw; p.groups = c.groups;
  p.finalize("conv2d");
  return p;
}

std::string name(const ConvCase& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "N%ld C%ld %ldx%ld K%ld k%ldx%ld s%ld,%ld p%ld,%ld,%ld,%ld d%ld,%ld g%ld",
                long(c.N), long(c.C), long(c.H), long(c.W), long(c.K), long(c.kh), long(c.kw),
                long(c.sh), long(c.sw), long(c.pt), long(c.pl), long(c.pb), long(c.pr), long(c.dh),
                long(c.dw), long(c.groups));
  return buf;
}

template <int BM, int BN, int BK, int TM, int TN>
void check_gemm_conv(const ConvCase& c, const char* tile) {
  const Conv2dParams p = params(c);
  const ConvDims d = conv_dims(p);
  const std::string nm = name(c) + " [" + tile + "]";
  auto x = randn(p.x_size(), 1), w = randn(p.w_size(), 2), b = randn(p.K, 3);
  auto res = randn(p.y_size(), 4), gy = randn(p.y_size(), 5);

  // forward with bias + residual + clip, with the general loader and (where
  // it applies) the 1x1 one
  Epilogue ep;
  ep.bias = b.data();
  ep.lo = -1.5f;
  ep.hi = 2.f;
  std::vector<float> ref(p.y_size());
  conv2d_forward(p, x.data(), w.data(), ref.data(), ep, res.data());
  const int M = int(p.Kg()), N = int(p.N * p.OH * p.OW), Kd = int(p.Cg() * p.kh * p.kw);
  const int G = int(p.groups);
  const FwdStore store{d, nullptr, b.data(), res.data(), ep.lo, ep.hi};
  // Split-K the way conv2d.cu runs it: splits that all get k-tiles (as
  // nonempty_splits), each writing its workspace slice (poisoned first, so an
  // unwritten element shows), then the in-order reduce + epilogue.
  auto split_forward = [&](int splits, const auto& run, int bk = BK) {
    splits = int(nonempty_splits((Kd + bk - 1) / bk, splits));
    const i64 slice = p.y_size();
    std::vector<float> ws(slice * splits, NAN), y(slice, NAN);
    run(ws.data(), slice, splits);
    for (i64 i = 0; i < slice; ++i)
      fwd_epilogue_at(d, y.data(), ws.data(), splits, slice, b.data(), res.data(), ep.lo, ep.hi, i);
    return y;
  };
  auto forward = [&](const auto& ld, const std::string& tag) {
    std::vector<float> got(p.y_size(), NAN);
    FwdStore st = store;
    st.y = got.data();
    emulate_igemm<BM, BN, BK, TM, TN>(ld, st, M, N, Kd, G, 1);
    check_close("conv fwd " + tag + nm, got, ref);
    if (std::string(tile) == "64x64") {  // split-K forward: partial sums, then the epilogue
      check_close("conv fwd split-K3 " + tag + nm, split_forward(3, [&](float* ws, i64 slice, int s) {
        emulate_igemm<BM, BN, BK, TM, TN>(ld, FwdPartialStore{d, ws, slice}, M, N, Kd, G, s);
      }), ref);
    }
    if (std::string(tile) == "128x128") {  // once per case: the TF32 kernels' tiling
      std::vector<float> tc(p.y_size(), NAN);
      st.y = tc.data();
      emulate_tf32<128>(ld, st, M, N, Kd, G, 1);
      check_close("conv fwd tf32-128 tiling " + tag + nm, tc, ref);
      std::fill(tc.begin(), tc.end(), NAN);
      emulate_tf32<64>(ld, st, M, N, Kd, G, 1);
      check_close("conv fwd tf32-64 tiling " + tag + nm, tc, ref);
      for (int splits : {2, 3}) {
        auto sk = split_forward(splits, [&](float* ws, i64 slice, int s) {
          if (splits == 2) emulate_tf32<128>(ld, FwdPartialStore{d, ws, slice}, M, N, Kd, G, s);
          else emulate_tf32<64>(ld, FwdPartialStore{d, ws, slice}, M, N, Kd, G, s);
        }, kTcBK);
        check_close("conv fwd tf32-" + std::string(splits == 2 ? "128" : "64") + " split-K" +
                        std::to_string(splits) + " " + tag + nm, sk, ref);
      }
    }
  };
  forward(FwdLoader{d, x.data(), w.data()}, "");
  if (fwd_table_fits(d)) forward(FwdTableLoader{d, x.data(), w.data()}, "table-loader ");
  if (is_1x1_unpadded(d)) forward(Fwd1x1Loader{d, x.data(), w.data()}, "1x1-loader ");

  // backward data
  std::vector<float> gx_ref(p.x_size()), gx(p.x_size(), NAN);
  conv2d_backward_input(p, gy.data(), w.data(), gx_ref.data());
  emulate_igemm<BM, BN, BK, TM, TN>(BwdDataLoader{d, gy.data(), w.data()},
                                    BwdDataStore{d, gx.data()}, int(p.Cg()),
                                    int(p.N * p.H * p.W), int(p.Kg() * p.kh * p.kw),
                                    int(p.groups), 1);
  check_close("conv bwd-data " + nm, gx, gx_ref);

  // backward weight, without and with split-K
  std::vector<float> gw_ref(p.w_size()), gb_ref(p.K);
  conv2d_backward_weight(p, gy.data(), x.data(), gw_ref.data(), gb_ref.data());
  for (int splits0 : {1, 3}) {
    const int KdW = int(p.N * p.OH * p.OW);
    const int splits = int(nonempty_splits((KdW + BK - 1) / BK, splits0));
    const i64 slice = p.w_size();
    std::vector<float> ws(slice * splits, NAN), gw(slice);
    emulate_igemm<BM, BN, BK, TM, TN>(BwdWeightLoader{d, gy.data(), x.data()},
                                      BwdWeightStore{d, ws.data(), slice}, int(p.Kg()),
                                      int(p.Cg() * p.kh * p.kw), int(p.N * p.OH * p.OW),
                                      int(p.groups), splits);
    for (i64 i = 0; i < slice; ++i) {
      gw[i] = ws[i];
      for (int s2 = 1; s2 < splits; ++s2) gw[i] += ws[i + s2 * slice];
    }
    check_close("conv bwd-weight split" + std::to_string(splits) + " " + nm, gw, gw_ref, 2e-4f);
  }
}

void check_depthwise(const ConvCase& c) {
  const Conv2dParams p = params(c);
  const ConvDims d = conv_dims(p);
  const std::string nm = name(c);
  auto x = randn(p.x_size(), 11), w = randn(p.w_size(), 12), b = randn(p.K, 13);
  auto res = randn(p.y_size(), 14), gy = randn(p.y_size(), 15);
  Epilogue ep = Epilogue::relu();
  ep.bias = b.data();
  std::vector<float> ref(p.y_size()), got(p.y_size());
  conv2d_forward(p, x.data(), w.data(), ref.data(), ep, res.data());
  for (int i = 0; i < int(p.y_size()); ++i)
    got[i] = dw_forward_at(d, x.data(), w.data(), b.data(), res.data(), ep.lo, ep.hi, i);
  check_close("depthwise fwd " + nm, got, ref);

  std::vector<float> gx_ref(p.x_size()), gx(p.x_size());
  conv2d_backward_input(p, gy.data(), w.data(), gx_ref.data());
  for (int i = 0; i < int(p.x_size()); ++i) gx[i] = dw_backward_input_at(d, gy.data(), w.data(), i);
  check_close("depthwise bwd-data " + nm, gx, gx_ref);

  std::vector<float> gw_ref(p.w_size()), gb_ref(p.K), gw(p.w_size());
  conv2d_backward_weight(p, gy.data(), x.data(), gw_ref.data(), gb_ref.data());
  for (int k = 0; k < d.K; ++k)
    for (int rs = 0; rs < d.khw; ++rs) {
      float s = 0.f;
      for (int q = 0; q < d.N * d.OHW; ++q) s += dw_weight_term(d, gy.data(), x.data(), k, rs, q);
      gw[i64(k) * d.khw + rs] = s;
    }
  check_close("depthwise bwd-weight " + nm, gw, gw_ref, 2e-4f);
}

struct PoolCase {
  index_t N, C, H, W, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
  bool ceil, cip;
};

void check_pool(const PoolCase& c, bool with_nan) {
  Pool2dParams p;
  p.N = c.N; p.C = c.C; p.H = c.H; p.W = c.W; p.kh = c.kh; p.kw = c.kw;
  p.stride_h = c.sh; p.stride_w = c.sw; p.pad_t = c.pt; p.pad_l = c.pl; p.pad_b = c.pb;
  p.pad_r = c.pr; p.dil_h = c.dh; p.dil_w = c.dw; p.ceil_mode = c.ceil;
  p.count_include_pad = c.cip;
  p.finalize("pool");
  const PoolDims d = pool_dims("pool", p);
  char buf[160];
  std::snprintf(buf, sizeof buf, "%ldx%ld k%ldx%ld s%ld,%ld p%ld,%ld,%ld,%ld d%ld,%ld ceil%d cip%d%s",
                long(c.H), long(c.W), long(c.kh), long(c.kw), long(c.sh), long(c.sw), long(c.pt),
                long(c.pl), long(c.pb), long(c.pr), long(c.dh), long(c.dw), int(c.ceil),
                int(c.cip), with_nan ? " NaN" : "");
  const std::string nm = buf;
  auto x = randn(p.x_size(), 21), gy = randn(p.y_size(), 22);
  for (size_t i = 0; i < x.size(); i += 5) x[i] = x[(i + 1) % x.size()];  // ties
  if (with_nan) x[x.size() / 3] = NAN;

  std::vector<float> y_ref(p.y_size()), y(p.y_size());
  std::vector<index_t> i_ref(p.y_size()), ind(p.y_size());
  max_pool2d_forward(p, x.data(), y_ref.data(), i_ref.data());
  for (int i = 0; i < int(p.y_size()); ++i) max_fwd_at(d, x.data(), y.data(), ind.data(), i);
  check_equal("max_pool fwd " + nm, y, y_ref);
  check_equal("max_pool indices " + nm, ind, i_ref);

  std::vector<float> gx_ref(p.x_size()), gx(p.x_size(), 0.f);
  max_pool2d_backward(p, gy.data(), x.data(), gx_ref.data());
  for (int i = 0; i < int(p.y_size()); ++i) max_bwd_at(d, gy.data(), x.data(), gx.data(), i);
  check_close("max_pool bwd " + nm, gx, gx_ref, 1e-6f);

  if (c.dh != 1 || c.dw != 1 || with_nan) return;  // avg pooling has no dilation
  avg_pool2d_forward(p, x.data(), y_ref.data());
  for (int i = 0; i < int(p.y_size()); ++i) avg_fwd_at(d, x.data(), y.data(), i);
  check_close("avg_pool fwd " + nm, y, y_ref, 1e-6f);
  std::fill(gx.begin(), gx.end(), 0.f);
  avg_pool2d_backward(p, gy.data(), gx_ref.data());
  for (int i = 0; i < int(p.y_size()); ++i) avg_bwd_at(d, gy.data(), gx.data(), i);
  check_close("avg_pool bwd " + nm, gx, gx_ref, 1e-6f);
}

// The warp argmax of global max pooling: lane partials, then the shuffle-down
// tree (lanes past 31 read their own value, as __shfl_down_sync does).
void check_global_max(int HW, int nan_at, unsigned seed) {
  auto x = randn(HW, seed);
  for (int i = 0; i < HW; i += 3) x[i] = x[HW / 2];  // many ties with the middle value
  if (nan_at >= 0) x[nan_at] = NAN;
  float m[32];
  i64 a[32];
  for (int lane = 0; lane < 32; ++lane) {
    m[lane] = -std::numeric_limits<float>::infinity();
    a[lane] = -1;
    for (i64 j = lane; j < HW; j += 32) argmax_take(m[lane], a[lane], x[j], j);
  }
  for (int o = 16; o > 0; o >>= 1) {
    float m2[32];
    i64 a2[32];
    for (int l = 0; l < 32; ++l) { m2[l] = l + o < 32 ? m[l + o] : m[l]; a2[l] = l + o < 32 ? a[l + o] : a[l]; }
    for (int l = 0; l < 32; ++l) argmax_merge(m[l], a[l], m2[l], a2[l]);
  }
  std::vector<float> y(1), gx(HW), gx_ref(HW), y_ref(1), g = {1.5f};
  global_max_pool2d_forward(1, 1, HW, x.data(), y_ref.data());
  global_max_pool2d_backward(1, 1, HW, g.data(), x.data(), gx_ref.data());
  y[0] = m[0];
  for (int j = 0; j < HW; ++j) gx[j] = j == a[0] ? g[0] : 0.f;
  const std::string nm = "HW" + std::to_string(HW) + (nan_at >= 0 ? " NaN@" + std::to_string(nan_at) : "");
  check_equal("global_max fwd " + nm, y, y_ref);
  check_equal("global_max bwd (argmax) " + nm, gx, gx_ref);
}

// FastDiv against `/` over divisors and numerators in [0, 2^31).
void check_fastdiv() {
  ++g_checks;
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> any(0, std::numeric_limits<int>::max());
  std::vector<int> divisors;
  for (int d = 1; d <= 3000; ++d) divisors.push_back(d);
  for (int d : {12544, 50176, 65535, 65536, 1 << 20, 1073741823, 1073741824, 1073741825,
                std::numeric_limits<int>::max()})
    divisors.push_back(d);
  long bad = 0;
  for (int d : divisors) {
    const FastDiv f(d);
    for (int i = 0; i < 600; ++i) {
      int n = i < 300 ? i * 3 + i % 5 : any(gen);
      if (i == 597) n = d - 1;
      if (i == 598) n = std::numeric_limits<int>::max() - std::numeric_limits<int>::max() % d;
      if (i == 599) n = std::numeric_limits<int>::max();
      int r;
      if (f.divmod(n, r) != n / d || r != n % d) ++bad;
    }
  }
  if (bad) {
    ++g_failures;
    std::printf("FAIL FastDiv: %ld wrong quotients\n", bad);
  } else {
    std::printf("ok   FastDiv (%zu divisors)\n", divisors.size());
  }
}

}  // namespace

int main() {
  check_fastdiv();
  const std::vector<ConvCase> gemm_cases = {
      {2, 5, 9, 9, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},      // M over one 64 tile
      {1, 8, 11, 7, 12, 3, 3, 2, 1, 1, 0, 2, 1, 1, 1, 1},     // asym padding, stride
      {2, 12, 8, 8, 18, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 3},     // groups + dilation
      {1, 16, 6, 6, 130, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},    // 1x1, M over 128
      {2, 6, 8, 8, 4, 2, 4, 3, 2, 0, 3, 1, 0, 2, 1, 2},       // odd everything
      {1, 3, 15, 13, 9, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1},     // stem-like 7x7
      {3, 20, 12, 12, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},   // N*OH*OW over 64, K*khw > BK
      {2, 37, 9, 11, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},    // 1x1 loader, odd C and plane
      {2, 24, 9, 9, 20, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2},     // 1x1 stride 2, groups
      {1, 8, 7, 7, 6, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1, 1},       // 1x1, bottom/right pad reads zeros
      {1, 40, 5, 5, 300, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},    // M over two 128 tiles, N < 32
  };
  for (const auto& c : gemm_cases) {
    check_gemm_conv<64, 64, 8, 4, 4>(c, "64x64");
    check_gemm_conv<128, 128, 8, 8, 8>(c, "128x128");
    check_gemm_conv<64, 128, 8, 8, 4>(c, "64x128");
    check_gemm_conv<32, 256, 8, 4, 8>(c, "32x256");
  }
  const std::vector<ConvCase> dw_cases = {
      {2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8},
      {1, 4, 10, 10, 8, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 4},      // multiplier 2
      {2, 6, 9, 9, 6, 3, 3, 2, 2, 0, 1, 1, 0, 1, 2, 6},        // asym, dilated, strided
      {1, 1, 8, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},        // one input channel, dense
  };
  for (const auto& c : dw_cases) check_depthwise(c);
  const std::vector<PoolCase> pool_cases = {
      {2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false, true},
      {1, 4, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, true},
      {1, 4, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, false},
      {2, 2, 10, 7, 3, 2, 2, 1, 1, 0, 1, 0, 1, 1, true, true},
      {1, 3, 12, 12, 3, 3, 1, 1, 1, 1, 0, 1, 1, 1, false, false},
      {1, 2, 13, 13, 3, 3, 2, 2, 1, 1, 1, 1, 2, 2, false, true},
      {1, 2, 7, 7, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, true, true},   // all-padding windows possible
  };
  for (const auto& c : pool_cases) {
    check_pool(c, false);
    check_pool(c, true);
  }
  for (int HW : {1, 7, 49, 100, 1000}) {
    check_global_max(HW, -1, 31 + HW);
    check_global_max(HW, HW / 2, 37 + HW);
    if (HW > 40) check_global_max(HW, 40, 41);
  }
  if (g_misaligned) {
    ++g_failures;
    std::printf("FAIL tf32: %d wmma loads/stores misaligned\n", int(g_misaligned));
  }
  std::printf("%d/%d checks passed\n", g_checks - g_failures, g_checks);
  return g_failures ? 1 : 0;
}
