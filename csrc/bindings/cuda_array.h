// The Python-visible device array (convcore.cuda.DeviceArray): a C-contiguous
// float32 or int64 block of device memory with a shape. It owns its memory
// (a DeviceBuffer) or views memory of another library (torch, CuPy) that it
// keeps alive through `owner`. Only built with CONVCORE_WITH_CUDA.
#pragma once
#ifdef CONVCORE_WITH_CUDA
#include <memory>
#include <string>
#include <vector>

#include "convcore/cuda/buffer.h"
#include "ndarray.h"

namespace convcore_py {

enum class DType { F32, I64 };

inline const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "int64"; }

struct DeviceArray {
  std::shared_ptr<convcore::cuda::DeviceBuffer> buf;  // null when viewing foreign memory
  void* ptr = nullptr;
  std::vector<index_t> shape;
  DType dtype = DType::F32;
  int device = 0;
  py::object owner;  // foreign owner kept alive (None for our own buffers)

  index_t size() const {
    index_t n = 1;
    for (index_t s : shape) n *= s;
    return n;
  }
  std::size_t item() const { return dtype == DType::F32 ? 4 : 8; }
  std::size_t nbytes() const { return std::size_t(size()) * item(); }
  float* f32() const { return static_cast<float*>(ptr); }
};

// New uninitialised array on `device`.
DeviceArray device_empty(const std::vector<index_t>& shape, DType dtype, int device);

// The argument as a DeviceArray, or TypeError naming op/name.
const DeviceArray& as_device(const char* op, const char* name, const py::handle& h);
// float32, optionally ndim-checked, and on `device` (if >= 0).
const DeviceArray& as_device_f32(const char* op, const char* name, const py::handle& h, int ndim,
                                 int device);

void bind_cuda_array(py::module_& m);

}  // namespace convcore_py
#endif
