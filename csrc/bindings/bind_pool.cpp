#include "convcore/pool.h"
#include "ndarray.h"
#include "params_from_py.h"

namespace convcore_py {

namespace {

convcore::Pool2dParams make_pool(const char* op, const farray& x, const Shape& k, const Shape& s,
                                 const Shape& pad, const Shape& dil, bool ceil_mode,
                                 bool count_include_pad) {
  check_ndim(op, "input", x, 4);
  return pool_params_from(op, Shape(x.shape(), x.shape() + 4), k, s, pad, dil, ceil_mode,
                          count_include_pad);
}

void check_grad(const char* op, const farray& gy, const convcore::Pool2dParams& p) {
  check_ndim(op, "grad_out", gy, 4);
  if (gy.shape(0) != p.N || gy.shape(1) != p.C || gy.shape(2) != p.OH || gy.shape(3) != p.OW)
    throw py::value_error(std::string(op) + ": grad_out must have shape (" + std::to_string(p.N) +
                          ", " + std::to_string(p.C) + ", " + std::to_string(p.OH) + ", " +
                          std::to_string(p.OW) + ")");
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d_forward", [](const farray& x, std::vector<index_t> k, std::vector<index_t> s,
                                 std::vector<index_t> pad, std::vector<index_t> dil,
                                 bool ceil_mode, bool return_indices) {
    auto p = make_pool("max_pool2d", x, k, s, pad, dil, ceil_mode, true);
    farray y = empty({p.N, p.C, p.OH, p.OW}, "pool2d");
    py::array_t<int64_t> ind;
    int64_t* ip = nullptr;
    if (return_indices) {
      ind = py::array_t<int64_t>(std::vector<py::ssize_t>{p.N, p.C, p.OH, p.OW});
      ip = ind.mutable_data();
    }
    const float* xp = x.data();
    float* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      convcore::max_pool2d_forward(p, xp, yp, reinterpret_cast<index_t*>(ip));
    }
    if (return_indices) return py::object(py::make_tuple(y, ind));
    return py::object(y);
  });

  m.def("max_pool2d_backward", [](const farray& gy, const farray& x, std::vector<index_t> k,
                                  std::vector<index_t> s, std::vector<index_t> pad,
                                  std::vector<index_t> dil, bool ceil_mode) {
    auto p = make_pool("max_pool2d_backward", x, k, s, pad, dil, ceil_mode, true);
    check_grad("max_pool2d_backward", gy, p);
    farray gx = empty({p.N, p.C, p.H, p.W});
    const float *g = gy.data(), *xp = x.data();
    float* o = gx.mutable_data();
    {
      py::gil_scoped_release nogil;
      convcore::max_pool2d_backward(p, g, xp, o);
    }
    return gx;
  });

  m.def("avg_pool2d_forward", [](const farray& x, std::vector<index_t> k, std::vector<index_t> s,
                                 std::vector<index_t> pad, bool ceil_mode, bool cip) {
    auto p = make_pool("avg_pool2d", x, k, s, pad, {1, 1}, ceil_mode, cip);
    farray y = empty({p.N, p.C, p.OH, p.OW}, "pool2d");
    const float* xp = x.data();
    float* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      convcore::avg_pool2d_forward(p, xp, yp);
    }
    return y;
  });

  m.def("avg_pool2d_backward", [](const farray& gy, const farray& x, std::vector<index_t> k,
                                  std::vector<index_t> s, std::vector<index_t> pad,
                                  bool ceil_mode, bool cip) {
    auto p = make_pool("avg_pool2d_backward", x, k, s, pad, {1, 1}, ceil_mode, cip);
    check_grad("avg_pool2d_backward", gy, p);
    farray gx = empty({p.N, p.C, p.H, p.W});
    const float* g = gy.data();
    float* o = gx.mutable_data();
    {
      py::gil_scoped_release nogil;
      convcore::avg_pool2d_backward(p, g, o);
    }
    return gx;
  });

  auto global = [](const char* op, bool is_max) {
    return [op, is_max](const farray& x) {
      check_ndim(op, "input", x, 4);
      const index_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
      if (HW <= 0 || C <= 0) throw py::value_error(std::string(op) + ": input has an empty plane");
      farray y = empty({N, C, 1, 1});
      const float* xp = x.data();
      float* yp = y.mutable_data();
      {
        py::gil_scoped_release nogil;
        if (is_max) convcore::global_max_pool2d_forward(N, C, HW, xp, yp);
        else convcore::global_avg_pool2d_forward(N, C, HW, xp, yp);
      }
      return y;
    };
  };
  m.def("global_avg_pool2d", global("global_avg_pool2d", false));
  m.def("global_max_pool2d", global("global_max_pool2d", true));

  m.def("global_pool2d_backward", [](const farray& gy, const farray& x, bool is_max) {
    const char* op = is_max ? "global_max_pool2d_backward" : "global_avg_pool2d_backward";
    check_ndim(op, "input", x, 4);
    const index_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    if (gy.size() != N * C) throw py::value_error(std::string(op) + ": grad_out must have shape (N, C, 1, 1)");
    farray gx = empty({N, C, x.shape(2), x.shape(3)});
    const float *g = gy.data(), *xp = x.data();
    float* o = gx.mutable_data();
    {
      py::gil_scoped_release nogil;
      if (is_max) convcore::global_max_pool2d_backward(N, C, HW, g, xp, o);
      else convcore::global_avg_pool2d_backward(N, C, HW, g, o);
    }
    return gx;
  });
}

}  // namespace convcore_py
