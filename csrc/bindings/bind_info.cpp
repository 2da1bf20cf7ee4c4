#include <omp.h>
#include <unistd.h>

#include "convcore/cpu/job_pool.h"
#include "convcore/dispatch.h"
#include "convcore/threading.h"
#include "ndarray.h"

namespace convcore_py {

void check_allocation(const std::vector<index_t>& shape, size_t elem_size, const char* op) {
  static const double phys = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? double(pages) * double(page) : 1e15;
  }();
  double bytes = double(elem_size);
  for (index_t d : shape) {
    if (d < 0) throw py::value_error(std::string(op) + ": negative output size");
    bytes *= double(d);
  }
  if (bytes > phys)
    throw py::value_error(std::string(op) + ": output would need " + std::to_string(bytes / (1 << 30)) +
                          " GiB, more than this machine's memory");
}

void bind_info(py::module_& m) {
  m.def("set_num_threads", &convcore::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &convcore::get_num_threads);
  m.def("set_local_num_threads", &convcore::set_local_num_threads, py::arg("n"));
  m.def("get_local_num_threads", &convcore::get_local_num_threads);
  m.def("hold_workers", &convcore::hold_workers, py::arg("on"),
        "keep the kernel workers spinning between calls (the runner, during one run)");
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
    d["vendor_intel"] = f.intel;
    d["shifted_1x1"] = t.shifted_1x1;  // stride-1 1x1 convs read x in place
    d["winograd_small_direct"] = t.winograd_small_direct;
    d["openmp"] = _OPENMP;
    return d;
  });
}

}  // namespace convcore_py
