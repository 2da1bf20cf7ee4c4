// A block of device memory owned by one object (RAII, move-only), with
// host <-> device copies. The Python DeviceArray holds one of these.
#pragma once
#include <cstddef>

namespace convcore {
namespace cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Allocates `bytes` on `device` (0 bytes allocates nothing). Throws
  // CudaError (out of memory...) naming the size.
  // The block comes from a per-device cache of freed blocks when one of the
  // (rounded) size is there; bytes() is the rounded size.
  DeviceBuffer(std::size_t bytes, int device);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  int device() const { return device_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  int device_ = 0;
};

// Frees the cached blocks (convcore.cuda.empty_cache()); cached_bytes()
// is how much memory the cache holds.
void empty_cache();
std::size_t cached_bytes();

// Synchronous copies (they wait for queued kernels, so results are final).
void copy_to_device(void* dst, const void* src, std::size_t bytes, int device);
void copy_to_host(void* dst, const void* src, std::size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes, int device);

}  // namespace cuda
}  // namespace convcore
