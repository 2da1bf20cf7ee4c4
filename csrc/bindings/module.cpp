#include "ndarray.h"

namespace convcore_py {
void bind_train(py::module_& m);  // bind_train.cpp
void bind_gemm(py::module_& m);   // bind_gemm.cpp
void bind_chain(py::module_& m);  // bind_chain.cpp
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "convcore compiled kernels (internal; use the convcore package)";
#ifdef CONVCORE_VERSION
  m.attr("__version__") = CONVCORE_VERSION;
#endif
  convcore_py::bind_info(m);
  convcore_py::bind_conv(m);
  convcore_py::bind_pool(m);
  convcore_py::bind_activation(m);
  convcore_py::bind_train(m);
  convcore_py::bind_gemm(m);
  convcore_py::bind_chain(m);
  convcore_py::bind_cuda(m);
}
