#include "convcore/cuda/depthwise.cuh"
#include "convcore/cuda/launch.cuh"

namespace convcore {
namespace cuda {
namespace detail {

namespace {

__global__ void dw_forward_kernel(ConvDims d, const float* __restrict__ x,
                                  const float* __restrict__ w, float* __restrict__ y,
                                  const float* __restrict__ bias,
                                  const float* __restrict__ residual, float lo, float hi) {
  const i64 total = i64(d.N) * d.K * d.OHW;
  CC_GRID_STRIDE(i, total) y[i] = dw_forward_at(d, x, w, bias, residual, lo, hi, i);
}

__global__ void dw_backward_input_kernel(ConvDims d, const float* __restrict__ gy,
                                         const float* __restrict__ w, float* __restrict__ gx) {
  const i64 total = i64(d.N) * d.C * d.HW;
  CC_GRID_STRIDE(i, total) gx[i] = dw_backward_input_at(d, gy, w, i);
}

// Block-wide sum of one float per thread (blockDim.x == kThreads).
__device__ float block_sum(float v) {
  __shared__ float part[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / 32 ? part[threadIdx.x] : 0.f;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;  // valid in thread 0
}

// One block per weight element (k, r, s): reduce over (img, oh, ow).
__global__ void dw_backward_weight_kernel(ConvDims d, const float* __restrict__ gy,
                                          const float* __restrict__ x, float* __restrict__ gw) {
  const int k = blockIdx.x / d.khw, rs = blockIdx.x % d.khw;
  const i64 total = i64(d.N) * d.OHW;
  float acc = 0.f;
  for (i64 q = threadIdx.x; q < total; q += blockDim.x) acc += dw_weight_term(d, gy, x, k, rs, q);
  acc = block_sum(acc);
  if (threadIdx.x == 0) gw[blockIdx.x] = acc;
}

// One block per output channel.
__global__ void bias_backward_kernel(ConvDims d, const float* __restrict__ gy,
                                     float* __restrict__ gb) {
  const int k = blockIdx.x;
  const i64 total = i64(d.N) * d.OHW;
  float acc = 0.f;
  for (i64 q = threadIdx.x; q < total; q += blockDim.x) {
    const int img = int(q / d.OHW), pix = int(q % d.OHW);
    acc += CC_LDG(gy + (i64(img) * d.K + k) * d.OHW + pix);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) gb[k] = acc;
}

}  // namespace

void depthwise_forward(const ConvDims& d, const float* x, const float* w, float* y,
                       const Epilogue& ep, const float* residual) {
  const i64 total = i64(d.N) * d.K * d.OHW;
  if (total == 0) return;
  dw_forward_kernel<<<grid_for(total), kThreads>>>(d, x, w, y, ep.bias, residual, ep.lo, ep.hi);
  CC_CUDA_CHECK_LAUNCH("conv2d depthwise");
}

void depthwise_backward_input(const ConvDims& d, const float* gy, const float* w, float* gx) {
  const i64 total = i64(d.N) * d.C * d.HW;
  if (total == 0) return;
  dw_backward_input_kernel<<<grid_for(total), kThreads>>>(d, gy, w, gx);
  CC_CUDA_CHECK_LAUNCH("conv2d_backward depthwise input");
}

void depthwise_backward_weight(const ConvDims& d, const float* gy, const float* x, float* gw) {
  const i64 blocks = i64(d.K) * d.khw;
  if (blocks == 0) return;
  if (blocks > 0x7fffffff) fail("conv2d_backward", "too many weights for the CUDA kernel");
  dw_backward_weight_kernel<<<unsigned(blocks), kThreads>>>(d, gy, x, gw);
  CC_CUDA_CHECK_LAUNCH("conv2d_backward depthwise weight");
}

void bias_backward(const ConvDims& d, const float* gy, float* gb) {
  bias_backward_kernel<<<unsigned(d.K), kThreads>>>(d, gy, gb);
  CC_CUDA_CHECK_LAUNCH("conv2d_backward bias");
}

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
