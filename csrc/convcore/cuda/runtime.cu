#include <mutex>

#include "convcore/cuda/check.cuh"
#include "convcore/cuda/runtime.h"

namespace convcore {
namespace cuda {

namespace {
struct Probe {
  int count = 0;
  std::string reason;
};

// cudaGetDeviceCount is the first call into the driver: with no libcuda.so,
// an old driver or no GPU it returns an error (never crashes). The error is
// not sticky; cudaGetLastError clears it so later queries start clean.
const Probe& probe() {
  static Probe p;
  static std::once_flag once;
  std::call_once(once, [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      p.count = 0;
      p.reason = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
      cudaGetLastError();
    } else if (n == 0) {
      p.reason = "no CUDA device found";
    } else {
      p.count = n;
    }
  });
  return p;
}

void check_device(int device) {
  if (device < 0 || device >= device_count())
    throw std::invalid_argument("cuda: device " + std::to_string(device) + " does not exist (" +
                                std::to_string(device_count()) + " device(s) visible)");
}
}  // namespace

int device_count() { return probe().count; }
std::string unavailable_reason() { return probe().reason; }

DeviceInfo device_info(int device) {
  check_device(device);
  cudaDeviceProp prop{};
  CC_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  DeviceInfo d;
  d.name = prop.name;
  d.major = prop.major;
  d.minor = prop.minor;
  d.sm_count = prop.multiProcessorCount;
  d.total_memory = prop.totalGlobalMem;
  return d;
}

void set_device(int device) {
  check_device(device);
  CC_CUDA_CHECK(cudaSetDevice(device));
}

int current_device() {
  int d = 0;
  CC_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void synchronize() { CC_CUDA_CHECK(cudaDeviceSynchronize()); }

bool tf32_supported() {
  int d = current_device(), major = 0;
  CC_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d));
  return major >= 8;
}

int pointer_device(const void* ptr) {
  cudaPointerAttributes a{};
  cudaError_t e = cudaPointerGetAttributes(&a, ptr);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::invalid_argument(std::string("cuda: not a CUDA pointer (") +
                                cudaGetErrorString(e) + ")");
  }
  if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
    throw std::invalid_argument("cuda: the array is not in device memory");
  return a.device;
}

}  // namespace cuda
}  // namespace convcore
