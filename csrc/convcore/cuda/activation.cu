#include "convcore/cuda/activation.h"
#include "convcore/cuda/launch.cuh"

namespace convcore {
namespace cuda {

namespace {
__global__ void relu_kernel(index_t n, const float* x, float* y) {
  CC_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v > 0.f ? v : 0.f;  // NaN -> 0, as the CPU kernel's scalar path
  }
}
__global__ void relu_backward_kernel(index_t n, const float* gy, const float* x,
                                     float* gx) {
  CC_GRID_STRIDE(i, n) { gx[i] = x[i] > 0.f ? gy[i] : 0.f; }
}
__global__ void add_kernel(index_t n, const float* a, const float* b, float* y, bool relu) {
  CC_GRID_STRIDE(i, n) {
    const float v = a[i] + b[i];
    y[i] = relu ? (v > 0.f ? v : 0.f) : v;
  }
}
}  // namespace

void add_forward(index_t n, const float* a, const float* b, float* y, bool relu) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads>>>(n, a, b, y, relu);
  CC_CUDA_CHECK_LAUNCH("add");
}

void relu_forward(index_t n, const float* x, float* y) {
  if (n <= 0) return;
  relu_kernel<<<grid_for(n), kThreads>>>(n, x, y);
  CC_CUDA_CHECK_LAUNCH("relu");
}

void relu_backward(index_t n, const float* gy, const float* x, float* gx) {
  if (n <= 0) return;
  relu_backward_kernel<<<grid_for(n), kThreads>>>(n, gy, x, gx);
  CC_CUDA_CHECK_LAUNCH("relu_backward");
}

void fill_zero(index_t n, float* p) {
  if (n <= 0) return;
  CC_CUDA_CHECK(cudaMemsetAsync(p, 0, size_t(n) * sizeof(float)));
}

}  // namespace cuda
}  // namespace convcore
