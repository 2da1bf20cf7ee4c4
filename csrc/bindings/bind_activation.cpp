#include "convcore/activation.h"
#include "ndarray.h"

namespace convcore_py {

void bind_activation(py::module_& m) {
  // out: None -> new array; else written in place (must match x's size).
  m.def("relu", [](const farray& x, py::object out) {
    farray y = out.is_none() ? farray(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()))
                             : out.cast<farray>();
    if (y.size() != x.size()) throw py::value_error("relu: out has the wrong size");
    const float* xp = x.data();
    float* yp = y.mutable_data();
    const index_t n = x.size();
    {
      py::gil_scoped_release nogil;
      convcore::relu_forward(n, xp, yp);
    }
    return y;
  }, py::arg("x"), py::arg("out") = py::none());

  m.def("relu_backward", [](const farray& gy, const farray& x) {
    if (gy.size() != x.size()) throw py::value_error("relu_backward: grad_out and x differ in size");
    farray gx(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float *g = gy.data(), *xp = x.data();
    float* o = gx.mutable_data();
    const index_t n = x.size();
    {
      py::gil_scoped_release nogil;
      convcore::relu_backward(n, g, xp, o);
    }
    return gx;
  });
}

}  // namespace convcore_py
