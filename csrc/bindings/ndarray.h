// numpy <-> raw pointer helpers for the binding unit. Only conversion and
// checks live here; every algorithm is in csrc/convcore.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <vector>

#include "convcore/common.h"

namespace py = pybind11;

namespace convcore_py {

using convcore::index_t;
// float32, C-contiguous. functional.py has already converted and checked
// dtype/contiguity; pybind refuses anything else with a TypeError.
using farray = py::array_t<float, py::array::c_style>;

inline void check_ndim(const char* op, const char* name, const farray& a, int ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(op) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.ndim()) + "-D");
}

// Refuses outputs larger than the machine's physical memory with a
// ValueError instead of letting the allocation fail (or the OOM killer act).
void check_allocation(const std::vector<index_t>& shape, size_t elem_size, const char* op);

inline farray empty(const std::vector<index_t>& shape, const char* op = "convcore") {
  check_allocation(shape, sizeof(float), op);
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  return farray(s);
}

template <size_t N>
std::array<index_t, N> to_array(const std::vector<index_t>& v, const char* op, const char* what) {
  if (v.size() != N)
    throw py::value_error(std::string(op) + ": " + what + " needs " + std::to_string(N) +
                          " values, got " + std::to_string(v.size()));
  std::array<index_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = v[i];
  return a;
}

void bind_conv(py::module_& m);
void bind_pool(py::module_& m);
void bind_activation(py::module_& m);
void bind_info(py::module_& m);
void bind_cuda(py::module_& m);

}  // namespace convcore_py
