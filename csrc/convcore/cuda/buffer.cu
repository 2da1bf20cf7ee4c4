#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "convcore/cuda/buffer.h"
#include "convcore/cuda/check.cuh"

namespace convcore {
namespace cuda {

namespace {

// Caching allocator: cudaMalloc is slow and cudaFree synchronises the whole
// device, so freed blocks go to a per-device free list keyed by rounded size
// and are reused. Reuse is safe because every convcore kernel and copy runs
// on the legacy default stream: the next user's work is queued after the
// previous user's. Never destroyed (cudaFree during static destruction can
// run after the CUDA runtime is gone).
struct Cache {
  std::mutex mu;
  std::map<std::pair<int, std::size_t>, std::vector<void*>> free;
  std::size_t cached = 0;
};
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

std::size_t round_size(std::size_t b) {
  const std::size_t q = b < (std::size_t(1) << 20) ? 512 : (std::size_t(1) << 20);
  return (b + q - 1) / q * q;
}

void* cached_alloc(std::size_t bytes, int device) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.free.find({device, bytes});
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= bytes;
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {  // give the cache back and retry once
    cudaGetLastError();
    empty_cache();
    e = cudaMalloc(&p, bytes);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();  // out-of-memory is not sticky; clear it
    throw CudaError("cuda: cannot allocate " + std::to_string(bytes) + " bytes on device " +
                    std::to_string(device) + ": " + cudaGetErrorString(e));
  }
  return p;
}

}  // namespace

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  int cur = 0;
  cudaGetDevice(&cur);
  for (auto& kv : c.free) {
    cudaSetDevice(kv.first.first);
    for (void* p : kv.second) cudaFree(p);
  }
  c.free.clear();
  c.cached = 0;
  cudaSetDevice(cur);
}

std::size_t cached_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  return c.cached;
}

DeviceBuffer::DeviceBuffer(std::size_t bytes, int device) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  set_device(device);
  bytes_ = round_size(bytes);
  ptr_ = cached_alloc(bytes_, device);
}

DeviceBuffer::~DeviceBuffer() {
  if (!ptr_) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  c.free[{device_, bytes_}].push_back(ptr_);
  c.cached += bytes_;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), device_(o.device_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    DeviceBuffer old(std::move(*this));  // returns our block to the cache
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
