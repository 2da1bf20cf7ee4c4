#include <utility>

#include "convcore/cuda/buffer.h"
#include "convcore/cuda/check.cuh"

namespace convcore {
namespace cuda {

DeviceBuffer::DeviceBuffer(std::size_t bytes, int device) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  set_device(device);
  cudaError_t e = cudaMalloc(&ptr_, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // out-of-memory is not sticky; clear it
    ptr_ = nullptr;
    throw CudaError("cuda: cannot allocate " + std::to_string(bytes) + " bytes on device " +
                    std::to_string(device) + ": " + cudaGetErrorString(e));
  }
}

DeviceBuffer::~DeviceBuffer() {
  // Errors at free time (e.g. a sticky launch error) cannot be reported from
  // a destructor; the next checked call reports them.
  if (ptr_) cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), device_(o.device_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    device_ = o.device_;
  }
  return *this;
}

void copy_to_device(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  set_device(device);
  CC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  set_device(device);
  CC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_device_to_device(void* dst, const void* src, std::size_t bytes, int device) {
  if (bytes == 0) return;
  set_device(device);
  CC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

}  // namespace cuda
}  // namespace convcore
