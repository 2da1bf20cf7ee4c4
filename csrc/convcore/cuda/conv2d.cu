// conv2d forward/backward on the GPU: picks a kernel (one place) and
// launches it. The kernels are in igemm.cuh (GEMM-shaped convs) and
// conv2d_depthwise.cu (one input channel per group).
#include <algorithm>
#include <limits>
#include <string>

#include "convcore/cuda/activation.h"
#include "convcore/cuda/buffer.h"
#include "convcore/cuda/check.cuh"
#include "convcore/cuda/conv2d.h"
#include "convcore/cuda/conv2d_loaders.cuh"
#include "convcore/cuda/depthwise.cuh"
#include "convcore/cuda/igemm.cuh"
#include "convcore/cuda/igemm_tf32.cuh"
#include "convcore/cuda/runtime.h"

namespace convcore {
namespace cuda {

using namespace detail;

namespace {

constexpr i64 kInt32Max = std::numeric_limits<int>::max();

void fits32(const char* op, i64 v, const char* what) {
  if (v > kInt32Max)
    fail(op, what, " (", v, ") exceeds the CUDA kernels' 32-bit index range; split the batch");
}

// Everything the kernels index in 32 bits must fit.
ConvDims checked_dims(const char* op, const Conv2dParams& p) {
  fits32(op, p.N * p.OH * p.OW, "N*OH*OW");
  fits32(op, p.N * p.H * p.W, "N*H*W");
  fits32(op, p.K * p.kh * p.kw, "K*kh*kw");
  fits32(op, p.C * p.kh * p.kw, "C*kh*kw");
  fits32(op, p.K, "K");
  fits32(op, p.C, "C");
  if (p.groups > 65535) fail(op, "more than 65535 groups are not supported on CUDA");
  return conv_dims(p);
}

int sm_count() {
  int dev = 0, sms = 0;
  CC_CUDA_CHECK(cudaGetDevice(&dev));
  CC_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

// The GEMM tiles a forward conv can run with. `rate` is the relative speed
// per useful FLOP once the GPU is full (TF32: tensor cores); the chooser
// weighs it against padding waste and how well the grid fills the GPU.
enum Tile : int { kF32_128x128, kF32_64x128, kF32_32x256, kF32_64x64, kTF32_128, kTF32_64, kTiles };
struct TileInfo {
  const char* name;
  int bm, bn, bk;
  double rate;
  bool tf32, splits;  // uses tensor cores; may run split-K
};
constexpr TileInfo kTileInfo[kTiles] = {
    // FP32 rates from bench/bench_cuda.py on an H100 (ResNet-50 at batch
    // 32): 64x128 ran 30-34 TFLOP/s, 64x64 25-26, 128x128 (two blocks per
    // SM at 128 registers) 14-22.
    {"igemm-f32-128x128", 128, 128, 8, 0.65, false, false},
    {"igemm-f32-64x128", 64, 128, 8, 1.0, false, false},
    {"igemm-f32-32x256", 32, 256, 8, 0.9, false, false},
    {"igemm-f32-64x64", 64, 64, 8, 0.8, false, true},
    {"igemm-tf32-wmma-128x128", 128, kTcBN, kTcBK, 2.0, true, true},
    {"igemm-tf32-wmma-64x128", 64, kTcBN, kTcBK, 2.0, true, true},
};

struct Plan {
  bool depthwise = false;
  int tile = kF32_64x64;
  i64 splits = 1;
};

// Test hook (set_conv_kernel_override): a kernel name as conv_algo returns
// it; empty = choose. Read on the calling thread only while a test holds it.
std::string g_override;

struct Candidate {
  double cost;
  i64 splits;
};

// Estimated time of one tile on an M x N x Kd (x G) problem: padded work
// over speed, slowed when the grid gives the SMs fewer than 2 blocks each.
// Split-K (for tiles that support it) cuts the reduction when the grid is
// short, keeping >= 8 k-tiles per slice.
Candidate estimate(const TileInfo& t, i64 M, i64 N, i64 Kd, i64 G, int sms, bool allow_split,
                   bool force_split) {
  const i64 blocks = ceil_div(M, t.bm) * ceil_div(N, t.bn) * G;
  const i64 ktiles = ceil_div(Kd, t.bk);
  i64 splits = 1;
  if (t.splits && allow_split && (blocks < 2 * i64(sms) || force_split)) {
    splits = std::min(ceil_div(2 * i64(sms), blocks), ktiles / 8);
    splits = std::min(splits, 65535 / G);
    if (force_split) splits = std::max<i64>(splits, std::min<i64>(ktiles, 2));
    splits = nonempty_splits(ktiles, std::max<i64>(splits, 1));
  }
  const double padded = double(ceil_div(M, t.bm) * t.bm) * double(ceil_div(N, t.bn) * t.bn) *
                        double(ktiles * t.bk) * double(G);
  const double fill = std::min(1.0, double(blocks * splits) / (2.0 * sms));
  // split-K pays a zero fill, atomics and an epilogue pass
  const double overhead = splits > 1 ? 1.1 : 1.0;
  return {padded / t.rate / fill * overhead, splits};
}

// The forward kernel for these parameters (the one place that decides).
Plan choose(const Conv2dParams& p, bool tf32_ok, int sms, bool allow_split = true) {
  Plan plan;
  if (p.Cg() == 1) {
    plan.depthwise = true;
    return plan;
  }
  const i64 M = p.Kg(), N = p.N * p.OH * p.OW, Kd = p.Cg() * p.kh * p.kw;
  if (!g_override.empty()) {
    for (int t = 0; t < kTiles; ++t) {
      const std::string name = kTileInfo[t].name;
      const bool split = g_override == name + "-splitk";
      if (g_override != name && !split) continue;
      if (kTileInfo[t].tf32 && !tf32_ok) break;
      if (split && (!kTileInfo[t].splits || !allow_split)) break;
      plan.tile = t;
      plan.splits = split ? estimate(kTileInfo[t], M, N, Kd, p.groups, sms, true, true).splits : 1;
      return plan;
    }
    fail("conv2d", "kernel override '", g_override, "' does not apply to this convolution");
  }
  double best = 0;
  for (int t = 0; t < kTiles; ++t) {
    if (kTileInfo[t].tf32 && !tf32_ok) continue;
    const Candidate c = estimate(kTileInfo[t], M, N, Kd, p.groups, sms, allow_split, false);
    if (t == 0 || c.cost < best) {
      best = c.cost;
      plan.tile = t;
      plan.splits = c.splits;
    }
  }
  return plan;
}

std::string plan_name(const Plan& plan) {
  if (plan.depthwise) return "depthwise-direct";
  return std::string(kTileInfo[plan.tile].name) + (plan.splits > 1 ? "-splitk" : "");
}

// Split-K: sums the splits' slices in order and applies the epilogue.
__global__ void fwd_splitk_reduce_kernel(ConvDims d, float* y, const float* __restrict__ ws,
                                         int splits, i64 slice, const float* __restrict__ bias,
                                         const float* __restrict__ residual, float lo, float hi) {
  for (i64 i = i64(blockIdx.x) * blockDim.x + threadIdx.x; i < slice;
       i += i64(blockDim.x) * gridDim.x)
    fwd_epilogue_at(d, y, ws, splits, slice, bias, residual, lo, hi, i);
}

__global__ void sum_slices_kernel(float* out, const float* __restrict__ ws, int splits,
                                  i64 slice) {
  for (i64 i = i64(blockIdx.x) * blockDim.x + threadIdx.x; i < slice;
       i += i64(blockDim.x) * gridDim.x) {
    float v = ws[i];
    for (int s = 1; s < splits; ++s) v += ws[i + s * slice];
    out[i] = v;
  }
}

unsigned reduce_blocks(i64 total) {
  return unsigned(std::max<i64>(1, std::min<i64>(ceil_div(total, 256), 65535 * 8)));
}

constexpr int kMaxDevices = 64;

// Raises a kernel's dynamic shared memory limit when static + dynamic pass the
// 48 KB default, once per device and size (`raised` is the caller's per-kernel record; racing
// sets write the same value).
template <class Kernel>
void raise_smem_limit(const char* op, Kernel kernel, std::size_t static_bytes,
                      std::size_t dynamic_bytes, int (&raised)[kMaxDevices]) {
  if (static_bytes + dynamic_bytes <= 48 * 1024) return;
  const int dev = current_device();
  if (dev >= kMaxDevices) fail(op, "device ", dev, " is beyond the ", kMaxDevices, " supported");
  if (raised[dev] >= int(dynamic_bytes)) return;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             int(dynamic_bytes));
  if (e != cudaSuccess) fail(op, "cannot reserve ", dynamic_bytes, " bytes of shared memory");
  raised[dev] = int(dynamic_bytes);
}

// Dynamic shared memory for the loader's k table (kTable loaders).
template <class L>
std::size_t table_bytes(int Kd) {
  if constexpr (L::kTable) return std::size_t(Kd) * sizeof(int2);
  return 0;
}

template <int BM, int BN, int BK, int TM, int TN, class L, class S>
void launch_f32(const char* op, const L& ld, const S& st, i64 M, i64 N, i64 Kd, i64 G,
                i64 splits) {
  const i64 gy = ceil_div(M, BM), gz = G * splits;
  if (gy > 65535 || gz > 65535) fail(op, "problem too large for the CUDA grid");
  dim3 grid(unsigned(ceil_div(N, BN)), unsigned(gy), unsigned(gz));
  auto kernel = igemm_f32_kernel<BM, BN, BK, TM, TN, L, S>;
  static int raised[kMaxDevices] = {};
  const std::size_t smem = table_bytes<L>(int(Kd));
  raise_smem_limit(op, kernel, 2 * BK * (BM + BN) * sizeof(float), smem, raised);
  kernel<<<grid, (BM / TM) * (BN / TN), smem>>>(ld, st, int(M), int(N), int(Kd), int(splits));
  CC_CUDA_CHECK_LAUNCH(op);
}

template <int BM, class L, class S>
void launch_tf32(const char* op, const L& ld, const S& st, i64 M, i64 N, i64 Kd, i64 G,
                 i64 splits) {
  const i64 gy = ceil_div(M, BM), gz = G * splits;
  if (gy > 65535 || gz > 65535) fail(op, "problem too large for the CUDA grid");
  dim3 grid(unsigned(ceil_div(N, kTcBN)), unsigned(gy), unsigned(gz));
  auto kernel = igemm_tf32_kernel<BM, L, S>;
  static int raised[kMaxDevices] = {};
  const std::size_t tiles = tc_smem_floats<BM>() * sizeof(float);
  const std::size_t smem = tiles + table_bytes<L>(int(Kd));
  raise_smem_limit(op, kernel, 0, smem, raised);
  kernel<<<grid, kTcThreads, smem>>>(ld, st, int(M), int(N), int(Kd), int(splits));
  CC_CUDA_CHECK_LAUNCH(op);
}

// Launches a GEMM-shaped conv problem on the FP32 tiles without split-K.
template <class L, class S>
void launch_f32_tile(const char* op, int tile, const L& ld, const S& st, i64 M, i64 N, i64 Kd,
                     i64 G) {
  switch (tile) {
    case kF32_128x128: launch_f32<128, 128, 8, 8, 8>(op, ld, st, M, N, Kd, G, 1); break;
    case kF32_64x128: launch_f32<64, 128, 8, 8, 4>(op, ld, st, M, N, Kd, G, 1); break;
    case kF32_32x256: launch_f32<32, 256, 8, 4, 8>(op, ld, st, M, N, Kd, G, 1); break;
    default: launch_f32<64, 64, 8, 4, 4>(op, ld, st, M, N, Kd, G, 1); break;
  }
}

// ... and on the tiles that may run split-K (the Store must then add).
template <class L, class S>
void launch_split_tile(const char* op, int tile, const L& ld, const S& st, i64 M, i64 N, i64 Kd,
                       i64 G, i64 splits) {
  switch (tile) {
    case kTF32_128: launch_tf32<128>(op, ld, st, M, N, Kd, G, splits); break;
    case kTF32_64: launch_tf32<64>(op, ld, st, M, N, Kd, G, splits); break;
    default: launch_f32<64, 64, 8, 4, 4>(op, ld, st, M, N, Kd, G, splits); break;
  }
}

// The forward conv with loader ld: plain launch, or split-K into a workspace
// followed by the reduce + epilogue pass.
template <class L>
void run_forward(const char* op, const Plan& plan, const L& ld, const Conv2dParams& p,
                 const ConvDims& d, float* y, const Epilogue& ep, const float* residual) {
  const i64 M = p.Kg(), N = p.N * p.OH * p.OW, Kd = p.Cg() * p.kh * p.kw;
  const FwdStore st{d, y, ep.bias, residual, ep.lo, ep.hi};
  if (plan.splits == 1) {
    if (kTileInfo[plan.tile].tf32 || kTileInfo[plan.tile].splits)
      launch_split_tile(op, plan.tile, ld, st, M, N, Kd, p.groups, 1);
    else
      launch_f32_tile(op, plan.tile, ld, st, M, N, Kd, p.groups);
    return;
  }
  // The workspace goes back to the cache when this returns, before the
  // kernels ran: safe, as every later use of the block is queued behind them
  // on the same (legacy default) stream.
  const i64 slice = p.y_size();
  DeviceBuffer ws(std::size_t(slice * plan.splits) * sizeof(float), current_device());
  float* wsp = static_cast<float*>(ws.data());
  launch_split_tile(op, plan.tile, ld, FwdPartialStore{d, wsp, slice}, M, N, Kd, p.groups,
                    plan.splits);
  fwd_splitk_reduce_kernel<<<reduce_blocks(slice), 256>>>(d, y, wsp, int(plan.splits), slice,
                                                          ep.bias, residual, ep.lo, ep.hi);
  CC_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

std::string conv_algo(const Conv2dParams& p, ConvPrecision prec) {
  const bool tf32 = prec == ConvPrecision::TF32 && tf32_supported();
  return plan_name(choose(p, tf32, sm_count()));
}

void set_conv_kernel_override(const std::string& name) { g_override = name; }

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep, const float* residual, ConvPrecision prec) {
  const char* op = "conv2d";
  const ConvDims d = checked_dims(op, p);
  if (p.y_size() == 0) return;
  const bool tf32 = prec == ConvPrecision::TF32 && tf32_supported();
  const Plan plan = choose(p, tf32, sm_count());
  if (plan.depthwise) {
    depthwise_forward(d, x, w, y, ep, residual);
    return;
  }
  if (is_1x1_unpadded(d))
    run_forward(op, plan, Fwd1x1Loader{d, x, w}, p, d, y, ep, residual);
  else if (fwd_table_fits(d))
    run_forward(op, plan, FwdTableLoader{d, x, w}, p, d, y, ep, residual);
  else
    run_forward(op, plan, FwdLoader{d, x, w}, p, d, y, ep, residual);
}

void conv2d_backward_input(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  const char* op = "conv2d_backward";
  if (!gx) return;
  const ConvDims d = checked_dims(op, p);
  if (p.x_size() == 0) return;
  if (p.Cg() == 1) {
    depthwise_backward_input(d, gy, w, gx);
    return;
  }
  const BwdDataLoader ld{d, gy, w};
  const BwdDataStore st{d, gx};
  const i64 M = p.Cg(), N = p.N * p.H * p.W, Kd = p.Kg() * p.kh * p.kw;
  // The same tile choice as a forward conv of this GEMM shape (FP32, no split).
  int best_tile = kF32_64x64;
  double best = 0;
  for (int t = 0; t < kTiles; ++t) {
    if (kTileInfo[t].tf32) continue;
    const double c = estimate(kTileInfo[t], M, N, Kd, p.groups, sm_count(), false, false).cost;
    if (t == 0 || c < best) best = c, best_tile = t;
  }
  launch_f32_tile(op, best_tile, ld, st, M, N, Kd, p.groups);
}

void conv2d_backward_weight(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                            float* gb) {
  const char* op = "conv2d_backward";
  const ConvDims d = checked_dims(op, p);
  if (gb) {
    if (p.N == 0) fill_zero(p.K, gb);
    else bias_backward(d, gy, gb);
  }
  if (!gw) return;
  if (p.N == 0) {
    fill_zero(p.w_size(), gw);
    return;
  }
  if (p.Cg() == 1) {
    depthwise_backward_weight(d, gy, x, gw);
    return;
  }
  // Split-K: the reduction (N*OH*OW) is long and the output small, so the
  // reduction is cut into slices that run as separate blocks and add into a
  // zeroed gradient. Aim at ~4 blocks per SM, slices of >= 32 tiles.
  const i64 M = p.Kg(), N = p.Cg() * p.kh * p.kw, Kd = p.N * p.OH * p.OW;
  const i64 base = ceil_div(M, 64) * ceil_div(N, 64) * p.groups;
  const i64 tiles = ceil_div(Kd, 8);
  i64 splits = std::max<i64>(1, 4 * i64(sm_count()) / std::max<i64>(base, 1));
  splits = std::min(splits, std::max<i64>(1, tiles / 32));
  splits = std::min(splits, std::max<i64>(1, 65535 / p.groups));
  splits = nonempty_splits(tiles, splits);
  const BwdWeightLoader ld{d, gy, x};
  const i64 slice = p.w_size();
  if (splits == 1) {
    launch_f32<64, 64, 8, 4, 4>(op, ld, BwdWeightStore{d, gw, slice}, M, N, Kd, p.groups, 1);
    return;
  }
  // Per-split slices summed in order: the gradient does not depend on timing.
  DeviceBuffer ws(std::size_t(slice * splits) * sizeof(float), current_device());
  float* wsp = static_cast<float*>(ws.data());
  launch_f32<64, 64, 8, 4, 4>(op, ld, BwdWeightStore{d, wsp, slice}, M, N, Kd, p.groups, splits);
  sum_slices_kernel<<<reduce_blocks(slice), 256>>>(gw, wsp, int(splits), slice);
  CC_CUDA_CHECK_LAUNCH(op);
}

}  // namespace cuda
}  // namespace convcore
