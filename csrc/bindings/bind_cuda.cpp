// CUDA bindings live behind CONVCORE_WITH_CUDA; a CPU-only build reports
// that CUDA was not built in.
#include "ndarray.h"

namespace convcore_py {

#ifndef CONVCORE_WITH_CUDA
void bind_cuda(py::module_& m) { m.attr("cuda_built") = false; }
#endif

}  // namespace convcore_py
