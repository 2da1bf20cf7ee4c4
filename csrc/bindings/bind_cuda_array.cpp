// convcore.cuda.DeviceArray: upload/download, __cuda_array_interface__ (v3)
// and DLPack export, import of other libraries' device arrays without copy.
#ifdef CONVCORE_WITH_CUDA
#include <cstring>

#include "convcore/cuda/runtime.h"
#include "cuda_array.h"
#include "dlpack.h"

namespace convcore_py {

namespace cu = convcore::cuda;

DeviceArray device_empty(const std::vector<index_t>& shape, DType dtype, int device) {
  DeviceArray a;
  a.shape = shape;
  a.dtype = dtype;
  a.device = device;
  index_t n = 1;
  for (index_t s : shape) n = convcore::checked_mul("cuda", n, s, "array");
  a.buf = std::make_shared<cu::DeviceBuffer>(std::size_t(n) * a.item(), device);
  a.ptr = a.buf->data();
  return a;
}

const DeviceArray& as_device(const char* op, const char* name, const py::handle& h) {
  if (!py::isinstance<DeviceArray>(h))
    throw py::type_error(std::string(op) + ": " + name +
                         " must be a convcore.cuda.DeviceArray, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  return h.cast<const DeviceArray&>();
}

const DeviceArray& as_device_f32(const char* op, const char* name, const py::handle& h, int ndim,
                                 int device) {
  const DeviceArray& a = as_device(op, name, h);
  if (a.dtype != DType::F32)
    throw py::type_error(std::string(op) + ": " + name + " must have dtype float32, got " +
                         dtype_name(a.dtype));
  if (ndim >= 0 && int(a.shape.size()) != ndim)
    throw py::value_error(std::string(op) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.shape.size()) + "-D");
  if (device >= 0 && a.device != device)
    throw py::value_error(std::string(op) + ": " + name + " is on cuda:" +
                          std::to_string(a.device) + " but the other inputs are on cuda:" +
                          std::to_string(device));
  return a;
}

namespace {

py::tuple shape_tuple(const DeviceArray& a) {
  py::tuple t(a.shape.size());
  for (size_t i = 0; i < a.shape.size(); ++i) t[i] = a.shape[i];
  return t;
}

DType dtype_of(const py::dtype& dt, const char* op) {
  if (dt.is(py::dtype::of<float>())) return DType::F32;
  if (dt.is(py::dtype::of<int64_t>())) return DType::I64;
  if (dt.equal(py::dtype::of<float>())) return DType::F32;
  if (dt.equal(py::dtype::of<int64_t>())) return DType::I64;
  throw py::type_error(std::string(op) + ": only float32 and int64 arrays can live on the "
                       "device, got " + std::string(py::str(dt)));
}

DeviceArray upload(py::array a, int device) {
  const DType t = dtype_of(a.dtype(), "cuda.asarray");
  a = py::array::ensure(a, py::array::c_style);  // C-contiguous copy if needed
  std::vector<index_t> shape(a.shape(), a.shape() + a.ndim());
  DeviceArray d = device_empty(shape, t, device);
  const void* src = a.data();
  {
    py::gil_scoped_release nogil;
    cu::copy_to_device(d.ptr, src, d.nbytes(), device);
  }
  return d;
}

py::array download(const DeviceArray& d) {
  std::vector<py::ssize_t> s(d.shape.begin(), d.shape.end());
  py::array out = d.dtype == DType::F32 ? py::array(py::dtype::of<float>(), s)
                                         : py::array(py::dtype::of<int64_t>(), s);
  void* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    cu::copy_to_host(dst, d.ptr, d.nbytes(), d.device);
  }
  return out;
}

// View of another library's device array, through __cuda_array_interface__.
DeviceArray from_interface(py::object obj) {
  const char* op = "cuda.asarray";
  py::dict cai = obj.attr("__cuda_array_interface__");
  py::tuple shape_t = cai["shape"];
  std::string typestr = py::str(cai["typestr"]);
  DType t;
  if (typestr == "<f4") t = DType::F32;
  else if (typestr == "<i8") t = DType::I64;
  else throw py::type_error(std::string(op) + ": only float32 ('<f4') and int64 ('<i8') device "
                            "arrays are supported, got '" + typestr + "'");
  DeviceArray d;
  d.dtype = t;
  for (auto s : shape_t) d.shape.push_back(s.cast<index_t>());
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    py::tuple st = cai["strides"];
    index_t expect = index_t(d.item());
    for (int i = int(d.shape.size()) - 1; i >= 0; --i) {
      if (d.shape[i] != 1 && st[i].cast<index_t>() != expect)
        throw py::value_error(std::string(op) + ": the device array must be C-contiguous "
                              "(copy it first, e.g. tensor.contiguous())");
      expect *= d.shape[i];
    }
  }
  py::tuple data = cai["data"];
  d.ptr = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  // Work queued by the producer on its stream must be done before we read:
  // our kernels run on the legacy default stream, so wait for the device.
  if (cai.contains("stream") && !cai["stream"].is_none()) cu::synchronize();
  d.device = d.size() == 0 || d.ptr == nullptr ? cu::current_device() : cu::pointer_device(d.ptr);
  d.owner = obj;
  return d;
}

// --- DLPack export ---------------------------------------------------------
struct DLCtx {
  std::vector<int64_t> shape;
  PyObject* self;  // strong reference to the exported DeviceArray
};

void release_ctx(DLCtx* ctx) {
  if (!ctx) return;
  if (Py_IsInitialized()) {
    py::gil_scoped_acquire gil;
    Py_XDECREF(ctx->self);
  }
  delete ctx;
}

void fill_tensor(DLTensor& t, const DeviceArray& a, DLCtx* ctx) {
  t.data = a.ptr;
  t.device = DLDevice{kDLCUDA, a.device};
  t.ndim = int32_t(a.shape.size());
  t.dtype = a.dtype == DType::F32 ? DLDataType{kDLFloat, 32, 1} : DLDataType{kDLInt, 64, 1};
  t.shape = ctx->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
}

py::capsule to_dlpack(py::object self, bool versioned) {
  const DeviceArray& a = self.cast<const DeviceArray&>();
  auto* ctx = new DLCtx{std::vector<int64_t>(a.shape.begin(), a.shape.end()), self.ptr()};
  Py_INCREF(self.ptr());
  if (versioned) {
    auto* m = new DLManagedTensorVersioned{};
    m->version = DLPackVersion{1, 0};
    m->manager_ctx = ctx;
    m->deleter = [](DLManagedTensorVersioned* s) {
      release_ctx(static_cast<DLCtx*>(s->manager_ctx));
      delete s;
    };
    m->flags = 0;
    fill_tensor(m->dl_tensor, a, ctx);
    return py::capsule(m, "dltensor_versioned", [](PyObject* cap) {
      // Only an unconsumed capsule still owns the tensor.
      if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
        auto* t = static_cast<DLManagedTensorVersioned*>(
            PyCapsule_GetPointer(cap, "dltensor_versioned"));
        if (t && t->deleter) t->deleter(t);
      }
    });
  }
  auto* m = new DLManagedTensor{};
  m->manager_ctx = ctx;
  m->deleter = [](DLManagedTensor* s) {
    release_ctx(static_cast<DLCtx*>(s->manager_ctx));
    delete s;
  };
  fill_tensor(m->dl_tensor, a, ctx);
  return py::capsule(m, "dltensor", [](PyObject* cap) {
    if (PyCapsule_IsValid(cap, "dltensor")) {
      auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
      if (t && t->deleter) t->deleter(t);
    }
  });
}

}  // namespace

void bind_cuda_array(py::module_& m) {
  py::class_<DeviceArray>(m, "DeviceArray", R"doc(
A C-contiguous float32 / int64 array in GPU memory (convcore.cuda.asarray
makes one). Shares memory with CuPy / torch through __cuda_array_interface__
and DLPack; .numpy() copies it back to the host.)doc")
      .def_property_readonly("shape", &shape_tuple)
      .def_property_readonly("dtype", [](const DeviceArray& a) {
        return a.dtype == DType::F32 ? py::dtype::of<float>() : py::dtype::of<int64_t>();
      })
      .def_property_readonly("ndim", [](const DeviceArray& a) { return a.shape.size(); })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("nbytes", &DeviceArray::nbytes)
      .def_property_readonly("device", [](const DeviceArray& a) { return a.device; })
      .def_property_readonly("data_ptr",
                             [](const DeviceArray& a) { return reinterpret_cast<std::uintptr_t>(a.ptr); })
      .def("numpy", &download, "Copy to a new numpy array (waits for queued kernels).")
      .def("copy", [](const DeviceArray& a) {
        DeviceArray d = device_empty(a.shape, a.dtype, a.device);
        {
          py::gil_scoped_release nogil;
          cu::copy_device_to_device(d.ptr, a.ptr, a.nbytes(), a.device);
        }
        return d;
      })
      .def("reshape", [](const DeviceArray& a, std::vector<index_t> shape) {
        // One -1 is inferred, as in numpy; the result shares memory.
        index_t known = 1;
        int infer = -1;
        for (size_t i = 0; i < shape.size(); ++i) {
          if (shape[i] == -1) {
            if (infer >= 0) throw py::value_error("reshape: only one dimension can be -1");
            infer = int(i);
          } else if (shape[i] < 0) {
            throw py::value_error("reshape: negative dimension " + std::to_string(shape[i]));
          } else {
            known *= shape[i];
          }
        }
        if (infer >= 0) shape[infer] = known == 0 ? 0 : a.size() / known;
        index_t n = 1;
        for (index_t s : shape) n *= s;
        if (n != a.size())
          throw py::value_error("reshape: cannot reshape an array of size " +
                                std::to_string(a.size()) + " into the requested shape");
        DeviceArray v = a;
        v.shape = shape;
        return v;
      })
      .def_property_readonly("__cuda_array_interface__", [](const DeviceArray& a) {
        py::dict d;
        d["shape"] = shape_tuple(a);
        d["typestr"] = a.dtype == DType::F32 ? "<f4" : "<i8";
        d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(a.ptr), false);
        d["strides"] = py::none();
        d["version"] = 3;
        // Our kernels run on the legacy default stream (1 in the protocol).
        d["stream"] = 1;
        return d;
      })
      .def("__dlpack_device__", [](const DeviceArray& a) { return py::make_tuple(int(kDLCUDA), a.device); })
      .def(
          "__dlpack__",
          [](py::object self, py::object stream, py::object max_version, py::object dl_device,
             py::object copy) {
            if (!copy.is_none() && copy.cast<bool>())
              throw py::buffer_error("DeviceArray.__dlpack__: copy=True is not supported");
            if (!dl_device.is_none()) {
              py::tuple dev = dl_device;
              const DeviceArray& a = self.cast<const DeviceArray&>();
              if (dev[0].cast<int>() != kDLCUDA || dev[1].cast<int>() != a.device)
                throw py::buffer_error("DeviceArray.__dlpack__: cannot export to another device");
            }
            // stream == -1: the consumer asks for no synchronisation.
            if (stream.is_none() || stream.cast<long long>() != -1) {
              py::gil_scoped_release nogil;
              cu::synchronize();
            }
            bool versioned = false;
            if (!max_version.is_none()) {
              py::tuple v = max_version;
              versioned = v.size() >= 1 && v[0].cast<int>() >= 1;
            }
            return to_dlpack(self, versioned);
          },
          py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
          py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__repr__", [](const DeviceArray& a) {
        std::string s = "DeviceArray(shape=(";
        for (size_t i = 0; i < a.shape.size(); ++i)
          s += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? "," : "");
        return s + "), dtype=" + dtype_name(a.dtype) + ", device=cuda:" + std::to_string(a.device) + ")";
      });

  m.def("upload", &upload, py::arg("array"), py::arg("device") = 0);
  m.def("from_cuda_array_interface", &from_interface, py::arg("obj"));
  m.def("empty", [](std::vector<index_t> shape, py::dtype dt, int device) {
    return device_empty(shape, dtype_of(dt, "cuda.empty"), device);
  }, py::arg("shape"), py::arg("dtype"), py::arg("device") = 0);
}

}  // namespace convcore_py
#endif
