#include "convcore/cuda/depthwise.cuh"
#include <algorithm>

#include "convcore/cuda/launch.cuh"

namespace convcore {
namespace cuda {
namespace detail {

namespace {

// d.N is the chunk's batch; pointers are offset to its first image.
__global__ void dw_forward_kernel(ConvDims d, const float* __restrict__ x,
                                  const float* __restrict__ w, float* __restrict__ y,
                                  const float* __restrict__ bias,
                                  const float* __restrict__ residual, float lo, float hi,
                                  int total) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x)
    y[i] = dw_forward_at(d, x, w, bias, residual, lo, hi, i);
}

__global__ void dw_backward_input_kernel(ConvDims d, const float* __restrict__ gy,
                                         const float* __restrict__ w, float* __restrict__ gx,
                                         int total) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x)
    gx[i] = dw_backward_input_at(d, gy, w, i);
}

// Runs fn(d_chunk, first_image, chunk_elements) over batch chunks whose
// `per_image`-element slices all fit 32-bit indices (grid-stride loops add
// at most one grid's worth on top, hence the margin).
template <class F>
void for_batch_chunks(const char* op, const ConvDims& d, i64 per_image, F fn) {
  constexpr i64 kLimit = (i64(1) << 31) - (i64(1) << 28);
  if (per_image > kLimit) fail(op, "one image is too large for the CUDA kernels' 32-bit indices");
  const i64 chunk = kLimit / per_image;
  for (i64 n0 = 0; n0 < d.N; n0 += chunk) {
    ConvDims c = d;
    c.N = int(std::min<i64>(chunk, d.N - n0));
    fn(c, n0, i64(c.N) * per_image);
  }
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
  for (i64 q = threadIdx.x; q < total; q += blockDim.x) acc += dw_weight_term(d, gy, x, k, rs, int(q));
  acc = block_sum(acc);
  if (threadIdx.x == 0) gw[blockIdx.x] = acc;
}

// One block per output channel.
__global__ void bias_backward_kernel(ConvDims d, const float* __restrict__ gy,
                                     float* __restrict__ gb) {
  const int k = blockIdx.x;
  const i64 total = i64(d.N) * d.OHW;  // < 2^31 (checked on the host)
  float acc = 0.f;
  for (i64 q = threadIdx.x; q < total; q += blockDim.x) {
    int pix;
    const int img = d.by_OHW.divmod(int(q), pix);
    acc += CC_LDG(gy + (i64(img) * d.K + k) * d.OHW + pix);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) gb[k] = acc;
}

}  // namespace

void depthwise_forward(const ConvDims& d, const float* x, const float* w, float* y,
                       const Epilogue& ep, const float* residual) {
  const i64 out_img = i64(d.K) * d.OHW, in_img = i64(d.C) * d.HW;
  for_batch_chunks("conv2d", d, out_img, [&](const ConvDims& c, i64 n0, i64 total) {
    if (total == 0) return;
    dw_forward_kernel<<<grid_for(total), kThreads>>>(
        c, x + n0 * in_img, w, y + n0 * out_img, ep.bias,
        residual ? residual + n0 * out_img : nullptr, ep.lo, ep.hi, int(total));
    CC_CUDA_CHECK_LAUNCH("conv2d depthwise");
  });
}

void depthwise_backward_input(const ConvDims& d, const float* gy, const float* w, float* gx) {
  const i64 out_img = i64(d.K) * d.OHW, in_img = i64(d.C) * d.HW;
  for_batch_chunks("conv2d_backward", d, in_img, [&](const ConvDims& c, i64 n0, i64 total) {
    if (total == 0) return;
    dw_backward_input_kernel<<<grid_for(total), kThreads>>>(c, gy + n0 * out_img, w,
                                                             gx + n0 * in_img, int(total));
    CC_CUDA_CHECK_LAUNCH("conv2d_backward depthwise input");
  });
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
