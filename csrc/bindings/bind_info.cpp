#include <omp.h>

#include "convcore/dispatch.h"
#include "convcore/threading.h"
#include "ndarray.h"

namespace convcore_py {

void bind_info(py::module_& m) {
  m.def("set_num_threads", &convcore::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &convcore::get_num_threads);
  m.def("cpu_info", []() {
    const auto& t = convcore::kernels();
    const auto f = convcore::cpu_features();
    py::dict d;
    d["isa"] = t.isa;
    d["simd_width"] = t.simd_width;
    d["gemm_tile"] = py::make_tuple(t.gemm_mr, t.gemm_nr);
    d["threads"] = convcore::get_num_threads();
    py::dict feats;
    feats["avx2"] = f.avx2;
    feats["fma"] = f.fma;
    feats["avx512f"] = f.avx512f;
    feats["avx512bw"] = f.avx512bw;
    feats["avx512dq"] = f.avx512dq;
    feats["avx512vl"] = f.avx512vl;
    d["features"] = feats;
    d["openmp"] = _OPENMP;
    return d;
  });
}

}  // namespace convcore_py
