// conv2d forward/backward on the GPU: picks a kernel (one place) and
// launches it. The kernels are in igemm.cuh (GEMM-shaped convs) and
// conv2d_depthwise.cu (one input channel per group).
#include <algorithm>
#include <limits>

#include "convcore/cuda/activation.h"
#include "convcore/cuda/check.cuh"
#include "convcore/cuda/conv2d.h"
#include "convcore/cuda/conv2d_loaders.cuh"
#include "convcore/cuda/depthwise.cuh"
#include "convcore/cuda/igemm.cuh"

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

enum class Kernel { Depthwise, F32Large, F32Small, F32SplitK, TF32 };

struct Plan {
  Kernel kernel;
  i64 splits = 1;
};

// The forward kernel for these parameters (the one place that decides).
Plan choose(const Conv2dParams& p, ConvPrecision prec, bool tf32_ok, int sms) {
  if (p.Cg() == 1) return {Kernel::Depthwise};
  if (prec == ConvPrecision::TF32 && tf32_ok) return {Kernel::TF32};
  const i64 M = p.Kg(), N = p.N * p.OH * p.OW, Kd = p.Cg() * p.kh * p.kw;
  // Large tiles only when they still give every SM a couple of blocks.
  const i64 big = ceil_div(M, 128) * ceil_div(N, 128) * p.groups;
  if (big >= 2 * i64(sms)) return {Kernel::F32Large};
  // Too few small tiles to fill the GPU (deep layers at batch 1): split the
  // reduction so ~2 blocks per SM run, each over >= 8 tiles of BK.
  const i64 small = ceil_div(M, 64) * ceil_div(N, 64) * p.groups;
  const i64 tiles = ceil_div(Kd, 8);
  i64 splits = std::min(ceil_div(2 * i64(sms), small), tiles / 8);
  splits = std::min(splits, 65535 / p.groups);
  if (small < i64(sms) && splits >= 2) return {Kernel::F32SplitK, splits};
  return {Kernel::F32Small};
}

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::Depthwise: return "depthwise-direct";
    case Kernel::F32Large: return "igemm-f32-128x128";
    case Kernel::F32Small: return "igemm-f32-64x64";
    case Kernel::F32SplitK: return "igemm-f32-64x64-splitk";
    case Kernel::TF32: return "igemm-tf32-wmma-128x128";
  }
  return "?";
}

__global__ void fwd_epilogue_kernel(ConvDims d, float* y, const float* __restrict__ bias,
                                    const float* __restrict__ residual, float lo, float hi,
                                    i64 total) {
  for (i64 i = i64(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += i64(blockDim.x) * gridDim.x)
    fwd_epilogue_at(d, y, bias, residual, lo, hi, i);
}

template <int BM, int BN, int BK, int TM, int TN, class L, class S>
void launch_f32(const char* op, const L& ld, const S& st, i64 M, i64 N, i64 Kd, i64 G,
                i64 splits) {
  const i64 gy = ceil_div(M, BM), gz = G * splits;
  if (gy > 65535 || gz > 65535) fail(op, "problem too large for the CUDA grid");
  dim3 grid(unsigned(ceil_div(N, BN)), unsigned(gy), unsigned(gz));
  igemm_f32_kernel<BM, BN, BK, TM, TN><<<grid, (BM / TM) * (BN / TN)>>>(
      ld, st, int(M), int(N), int(Kd), int(splits));
  CC_CUDA_CHECK_LAUNCH(op);
}

template <class L, class S>
void launch_tf32(const char* op, const L& ld, const S& st, i64 M, i64 N, i64 Kd, i64 G) {
  const i64 gy = ceil_div(M, kTcBM);
  if (gy > 65535 || G > 65535) fail(op, "problem too large for the CUDA grid");
  dim3 grid(unsigned(ceil_div(N, kTcBN)), unsigned(gy), unsigned(G));
  igemm_tf32_kernel<<<grid, kTcThreads>>>(ld, st, int(M), int(N), int(Kd));
  CC_CUDA_CHECK_LAUNCH(op);
}

// Runs a GEMM-shaped conv problem with the chosen FP32 tile.
template <class L, class S>
void run_f32(const char* op, bool large, const L& ld, const S& st, i64 M, i64 N, i64 Kd, i64 G,
             i64 splits = 1) {
  if (large) launch_f32<128, 128, 8, 8, 8>(op, ld, st, M, N, Kd, G, splits);
  else launch_f32<64, 64, 8, 4, 4>(op, ld, st, M, N, Kd, G, splits);
}

}  // namespace

const char* conv_algo(const Conv2dParams& p, ConvPrecision prec) {
  const bool tf32 = prec == ConvPrecision::TF32 && tf32_supported();
  return kernel_name(choose(p, prec, tf32, sm_count()).kernel);
}

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, float* y,
                    const Epilogue& ep, const float* residual, ConvPrecision prec) {
  const char* op = "conv2d";
  const ConvDims d = checked_dims(op, p);
  if (p.y_size() == 0) return;
  const bool tf32 = prec == ConvPrecision::TF32 && tf32_supported();
  const Plan plan = choose(p, prec, tf32, sm_count());
  const Kernel k = plan.kernel;
  if (k == Kernel::Depthwise) {
    depthwise_forward(d, x, w, y, ep, residual);
    return;
  }
  const FwdLoader ld{d, x, w};
  const FwdStore st{d, y, ep.bias, residual, ep.lo, ep.hi};
  const i64 M = p.Kg(), N = p.N * p.OH * p.OW, Kd = p.Cg() * p.kh * p.kw;
  if (k == Kernel::TF32) {
    launch_tf32(op, ld, st, M, N, Kd, p.groups);
  } else if (k == Kernel::F32SplitK) {
    fill_zero(p.y_size(), y);
    run_f32(op, false, ld, FwdPartialStore{d, y}, M, N, Kd, p.groups, plan.splits);
    if (ep.bias || residual || ep.clamp()) {
      const i64 total = p.y_size();
      const i64 blocks = std::min<i64>(ceil_div(total, 256), 65535 * 8);
      fwd_epilogue_kernel<<<unsigned(blocks), 256>>>(d, y, ep.bias, residual, ep.lo, ep.hi, total);
      CC_CUDA_CHECK_LAUNCH(op);
    }
  } else {
    run_f32(op, k == Kernel::F32Large, ld, st, M, N, Kd, p.groups);
  }
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
  const i64 big = ceil_div(M, 128) * ceil_div(N, 128) * p.groups;
  run_f32(op, big >= 2 * i64(sm_count()), ld, st, M, N, Kd, p.groups);
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
  fill_zero(p.w_size(), gw);
  const BwdWeightLoader ld{d, gy, x};
  const BwdWeightStore st{d, gw};
  run_f32(op, false, ld, st, M, N, Kd, p.groups, splits);
}

}  // namespace cuda
}  // namespace convcore
