// CUDA runtime queries and errors for the CUDA kernels. No CUDA headers here:
// the binding unit (a plain C++ file) includes this.
#pragma once
#include <stdexcept>
#include <string>

namespace convcore {
namespace cuda {

// A CUDA runtime error (launch failure, out of memory, illegal address...).
// The bindings map it to convcore.cuda.CudaError (a RuntimeError).
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Number of usable devices; 0 when there is no driver, no device, or the
// driver is too old for this build. Never throws (the answer is cached).
int device_count();
// Why device_count() is 0 ("" when it is not): the CUDA error text.
std::string unavailable_reason();

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;        // compute capability
  int sm_count = 0;
  std::size_t total_memory = 0;
};
DeviceInfo device_info(int device);  // throws CudaError / std::invalid_argument

// Makes `device` current for the calling thread (kernels launch there).
void set_device(int device);
int current_device();
// Waits for all work queued on the current device; raises a pending error.
void synchronize();
// True when the current device can run the TF32 tensor-core path (sm_80+).
bool tf32_supported();
// Device that owns a device pointer (for arrays imported from other
// libraries); throws std::invalid_argument if `ptr` is not device memory.
int pointer_device(const void* ptr);

}  // namespace cuda
}  // namespace convcore
