// CUDA bindings live behind CONVCORE_WITH_CUDA; a CPU-only build reports
// that CUDA was not built in. With CUDA: the submodule _core.cuda holds the
// runtime queries, DeviceArray and the ops on device arrays. Like the CPU
// bindings these only convert and check, then call csrc/convcore/cuda.
#include "ndarray.h"

#ifdef CONVCORE_WITH_CUDA
#include <cmath>

#include "convcore/cuda/activation.h"
#include "convcore/cuda/buffer.h"
#include "convcore/cuda/conv2d.h"
#include "convcore/cuda/pool.h"
#include "convcore/cuda/runtime.h"
#include "cuda_array.h"
#include "params_from_py.h"
#endif

namespace convcore_py {

#ifndef CONVCORE_WITH_CUDA
void bind_cuda(py::module_& m) { m.attr("cuda_built") = false; }
#else

namespace cu = convcore::cuda;

namespace {

// The same geometry checks as the CPU bindings.
constexpr auto conv_params = conv_params_from;
constexpr auto pool_params = pool_params_from;

void check_shape(const char* op, const char* name, const DeviceArray& a, const Shape& want) {
  if (a.shape != want) {
    std::string s = "(";
    for (size_t i = 0; i < want.size(); ++i) s += std::to_string(want[i]) + (i + 1 < want.size() ? ", " : "");
    throw py::value_error(std::string(op) + ": " + name + " must have shape " + s + ")");
  }
}

const float* opt_f32(const char* op, const char* name, const py::object& o, int dev,
                     const Shape& want) {
  if (o.is_none()) return nullptr;
  const DeviceArray& a = as_device_f32(op, name, o, int(want.size()), dev);
  check_shape(op, name, a, want);
  return a.f32();
}

void bind_ops(py::module_& m) {
  m.def("conv2d_forward", [](py::object xo, py::object wo, py::object bias, Shape stride,
                             Shape pad, Shape dil, index_t groups, float lo, float hi,
                             py::object residual, bool tf32) {
    const char* op = "conv2d";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    const DeviceArray& w = as_device_f32(op, "weight", wo, 4, x.device);
    auto p = conv_params(op, x.shape, w.shape, stride, pad, dil, groups);
    cu::set_device(x.device);
    convcore::Epilogue ep;
    ep.lo = lo; ep.hi = hi;
    ep.bias = opt_f32(op, "bias", bias, x.device, {p.K});
    const float* rp = opt_f32(op, "residual", residual, x.device, {p.N, p.K, p.OH, p.OW});
    DeviceArray y = device_empty({p.N, p.K, p.OH, p.OW}, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      cu::conv2d_forward(p, x.f32(), w.f32(), y.f32(), ep, rp,
                         tf32 ? cu::ConvPrecision::TF32 : cu::ConvPrecision::FP32);
    }
    return y;
  });

  m.def("conv_algo", [](Shape xs, Shape ws, Shape stride, Shape pad, Shape dil, index_t groups,
                        bool tf32, int device) {
    auto p = conv_params("conv2d", xs, ws, stride, pad, dil, groups);
    cu::set_device(device);
    return cu::conv_algo(p, tf32 ? cu::ConvPrecision::TF32 : cu::ConvPrecision::FP32);
  });

  // Test hook: run every GEMM-shaped forward conv with the named kernel.
  m.def("_set_conv_kernel_override", [](const std::string& name) {
    cu::set_conv_kernel_override(name);
  });

  m.def("conv2d_backward", [](py::object gyo, py::object xo, py::object wo, Shape stride,
                              Shape pad, Shape dil, index_t groups, bool need_x, bool need_w,
                              bool need_b) {
    const char* op = "conv2d_backward";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    const DeviceArray& w = as_device_f32(op, "weight", wo, 4, x.device);
    const DeviceArray& gy = as_device_f32(op, "grad_out", gyo, 4, x.device);
    auto p = conv_params(op, x.shape, w.shape, stride, pad, dil, groups);
    check_shape(op, "grad_out", gy, {p.N, p.K, p.OH, p.OW});
    cu::set_device(x.device);
    py::object gx = py::none(), gw = py::none(), gb = py::none();
    float *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
    if (need_x) { DeviceArray a = device_empty(x.shape, DType::F32, x.device); gxp = a.f32(); gx = py::cast(a); }
    if (need_w) { DeviceArray a = device_empty(w.shape, DType::F32, x.device); gwp = a.f32(); gw = py::cast(a); }
    if (need_b) { DeviceArray a = device_empty({p.K}, DType::F32, x.device); gbp = a.f32(); gb = py::cast(a); }
    {
      py::gil_scoped_release nogil;
      cu::conv2d_backward_input(p, gy.f32(), w.f32(), gxp);
      if (gwp || gbp) cu::conv2d_backward_weight(p, gy.f32(), x.f32(), gwp, gbp);
    }
    return py::make_tuple(gx, gw, gb);
  });

  m.def("max_pool2d_forward", [](py::object xo, Shape k, Shape s, Shape pad, Shape dil,
                                 bool ceil_mode, bool return_indices) {
    const char* op = "max_pool2d";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    auto p = pool_params(op, x.shape, k, s, pad, dil, ceil_mode, true);
    cu::set_device(x.device);
    DeviceArray y = device_empty({p.N, p.C, p.OH, p.OW}, DType::F32, x.device);
    DeviceArray ind;
    if (return_indices) ind = device_empty(y.shape, DType::I64, x.device);
    {
      py::gil_scoped_release nogil;
      cu::max_pool2d_forward(p, x.f32(), y.f32(),
                             return_indices ? static_cast<index_t*>(ind.ptr) : nullptr);
    }
    if (return_indices) return py::object(py::make_tuple(y, ind));
    return py::cast(y);
  });

  m.def("max_pool2d_backward", [](py::object gyo, py::object xo, Shape k, Shape s, Shape pad,
                                  Shape dil, bool ceil_mode) {
    const char* op = "max_pool2d_backward";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    const DeviceArray& gy = as_device_f32(op, "grad_out", gyo, 4, x.device);
    auto p = pool_params(op, x.shape, k, s, pad, dil, ceil_mode, true);
    check_shape(op, "grad_out", gy, {p.N, p.C, p.OH, p.OW});
    cu::set_device(x.device);
    DeviceArray gx = device_empty(x.shape, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      cu::max_pool2d_backward(p, gy.f32(), x.f32(), gx.f32());
    }
    return gx;
  });

  m.def("avg_pool2d_forward", [](py::object xo, Shape k, Shape s, Shape pad, bool ceil_mode,
                                 bool cip) {
    const char* op = "avg_pool2d";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    auto p = pool_params(op, x.shape, k, s, pad, {1, 1}, ceil_mode, cip);
    cu::set_device(x.device);
    DeviceArray y = device_empty({p.N, p.C, p.OH, p.OW}, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      cu::avg_pool2d_forward(p, x.f32(), y.f32());
    }
    return y;
  });

  m.def("avg_pool2d_backward", [](py::object gyo, py::object xo, Shape k, Shape s, Shape pad,
                                  bool ceil_mode, bool cip) {
    const char* op = "avg_pool2d_backward";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    const DeviceArray& gy = as_device_f32(op, "grad_out", gyo, 4, x.device);
    auto p = pool_params(op, x.shape, k, s, pad, {1, 1}, ceil_mode, cip);
    check_shape(op, "grad_out", gy, {p.N, p.C, p.OH, p.OW});
    cu::set_device(x.device);
    DeviceArray gx = device_empty(x.shape, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      cu::avg_pool2d_backward(p, gy.f32(), gx.f32());
    }
    return gx;
  });

  m.def("global_pool2d", [](py::object xo, bool is_max) {
    const char* op = is_max ? "global_max_pool2d" : "global_avg_pool2d";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    const index_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
    if (HW <= 0 || C <= 0) throw py::value_error(std::string(op) + ": input has an empty plane");
    cu::set_device(x.device);
    DeviceArray y = device_empty({N, C, 1, 1}, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      if (is_max) cu::global_max_pool2d_forward(N, C, HW, x.f32(), y.f32());
      else cu::global_avg_pool2d_forward(N, C, HW, x.f32(), y.f32());
    }
    return y;
  });

  m.def("global_pool2d_backward", [](py::object gyo, py::object xo, bool is_max) {
    const char* op = is_max ? "global_max_pool2d_backward" : "global_avg_pool2d_backward";
    const DeviceArray& x = as_device_f32(op, "input", xo, 4, -1);
    const DeviceArray& gy = as_device_f32(op, "grad_out", gyo, 4, x.device);
    const index_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
    check_shape(op, "grad_out", gy, {N, C, 1, 1});
    cu::set_device(x.device);
    DeviceArray gx = device_empty(x.shape, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      if (is_max) cu::global_max_pool2d_backward(N, C, HW, gy.f32(), x.f32(), gx.f32());
      else cu::global_avg_pool2d_backward(N, C, HW, gy.f32(), gx.f32());
    }
    return gx;
  });

  m.def("relu", [](py::object xo, bool inplace) {
    const DeviceArray& x = as_device_f32(inplace ? "relu_" : "relu", "input", xo, -1, -1);
    cu::set_device(x.device);
    DeviceArray y = inplace ? x : device_empty(x.shape, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      cu::relu_forward(x.size(), x.f32(), y.f32());
    }
    return inplace ? xo : py::cast(y);
  });

  m.def("add", [](py::object ao, py::object bo, bool relu) {
    const char* op = "add";
    const DeviceArray& a = as_device_f32(op, "a", ao, -1, -1);
    const DeviceArray& b = as_device_f32(op, "b", bo, -1, a.device);
    check_shape(op, "b", b, a.shape);
    cu::set_device(a.device);
    DeviceArray y = device_empty(a.shape, DType::F32, a.device);
    {
      py::gil_scoped_release nogil;
      cu::add_forward(a.size(), a.f32(), b.f32(), y.f32(), relu);
    }
    return y;
  });

  m.def("relu_backward", [](py::object gyo, py::object xo) {
    const char* op = "relu_backward";
    const DeviceArray& x = as_device_f32(op, "input", xo, -1, -1);
    const DeviceArray& gy = as_device_f32(op, "grad_out", gyo, -1, x.device);
    check_shape(op, "grad_out", gy, x.shape);
    cu::set_device(x.device);
    DeviceArray gx = device_empty(x.shape, DType::F32, x.device);
    {
      py::gil_scoped_release nogil;
      cu::relu_backward(x.size(), gy.f32(), x.f32(), gx.f32());
    }
    return gx;
  });
}

}  // namespace

void bind_cuda(py::module_& m) {
  m.attr("cuda_built") = true;
  py::module_ c = m.def_submodule("cuda", "CUDA kernels (internal; use convcore.cuda)");
  py::register_exception<cu::CudaError>(c, "CudaError", PyExc_RuntimeError);
  c.def("device_count", &cu::device_count);
  c.def("unavailable_reason", &cu::unavailable_reason);
  c.def("device_info", [](int device) {
    auto i = cu::device_info(device);
    py::dict d;
    d["name"] = i.name;
    d["compute_capability"] = py::make_tuple(i.major, i.minor);
    d["multiprocessors"] = i.sm_count;
    d["total_memory"] = i.total_memory;
    return d;
  });
  c.def("synchronize", [](int device) {
    py::gil_scoped_release nogil;
    cu::set_device(device);
    cu::synchronize();
  }, py::arg("device") = 0);
  c.def("tf32_supported", [](int device) {
    cu::set_device(device);
    return cu::tf32_supported();
  }, py::arg("device") = 0);
  c.def("empty_cache", [] {
    py::gil_scoped_release nogil;
    cu::empty_cache();
  });
  c.def("cached_bytes", &cu::cached_bytes);
  bind_cuda_array(c);
  bind_ops(c);
}
#endif

}  // namespace convcore_py
