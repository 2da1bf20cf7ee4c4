// The training front end's kernels:
//   batch_norm_forward / batch_norm_backward: nn.functional.batch_norm's
//   float32 path. Shapes are checked here (ValueError naming the op); the
//   batch statistics come back as float64 arrays for backward.
//   sgd_step: optim.SGD's update of one float32 parameter, in place.
#include "convcore/batch_norm.h"
#include "convcore/sgd.h"
#include "ndarray.h"

namespace convcore_py {

namespace {

using darray = py::array_t<double, py::array::c_style>;

convcore::BatchNormShape bn_shape(const char* op, const farray& x) {
  if (x.ndim() < 2)
    throw py::value_error(std::string(op) + ": input must be at least 2-D (N, C, ...), got " +
                          std::to_string(x.ndim()) + "-D");
  convcore::BatchNormShape s;
  s.N = x.shape(0);
  s.C = x.shape(1);
  for (py::ssize_t i = 2; i < x.ndim(); ++i) s.L *= x.shape(i);
  return s;
}

// Pointer to a per-channel vector (float32, shape (C,)), or null for None.
template <typename T>
T* channel_vec(const char* op, const char* name, py::object v, index_t C, bool writable) {
  if (v.is_none()) return nullptr;
  using arr = py::array_t<std::remove_const_t<T>, py::array::c_style>;
  if (!py::isinstance<arr>(v))
    throw py::type_error(std::string(op) + ": " + name + " must be a C-contiguous " +
                         (sizeof(T) == 4 ? "float32" : "float64") + " array");
  arr a = v.cast<arr>();
  if (a.ndim() != 1 || a.shape(0) != C)
    throw py::value_error(std::string(op) + ": " + name + " must have shape (" +
                          std::to_string(C) + ",) for an input of " + std::to_string(C) +
                          " channels");
  if (writable) {
    if (!a.writeable()) throw py::value_error(std::string(op) + ": " + name + " is read-only");
    return const_cast<T*>(a.mutable_data());
  }
  return const_cast<T*>(a.data());
}

}  // namespace

void bind_train(py::module_& m) {
  // -> (y, mean, invstd); mean/invstd float64 (C,), for backward.
  m.def("batch_norm_forward", [](const farray& x, py::object weight, py::object bias,
                                 py::object running_mean, py::object running_var, bool training,
                                 double momentum, double eps, bool relu) {
    const char* op = "batch_norm";
    const auto s = bn_shape(op, x);
    const float* w = channel_vec<const float>(op, "weight", weight, s.C, false);
    const float* b = channel_vec<const float>(op, "bias", bias, s.C, false);
    float* rm = channel_vec<float>(op, "running_mean", running_mean, s.C, training);
    float* rv = channel_vec<float>(op, "running_var", running_var, s.C, training);
    if (!rm != !rv) throw py::value_error("batch_norm: give both running_mean and running_var, or neither");
    if (!training && !rm)
      throw py::value_error("batch_norm: running_mean and running_var are needed when not training");
    if (training && s.N * s.L <= 1)
      throw py::value_error("batch_norm: expected more than 1 value per channel when training, got " +
                            std::to_string(s.N * s.L));
    if (!(eps >= 0)) throw py::value_error("batch_norm: eps must be >= 0");
    farray y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    darray mean(std::vector<py::ssize_t>{py::ssize_t(s.C)});
    darray invstd(std::vector<py::ssize_t>{py::ssize_t(s.C)});
    const float* xp = x.data();
    float* yp = y.mutable_data();
    double *mp = mean.mutable_data(), *ip = invstd.mutable_data();
    {
      py::gil_scoped_release nogil;
      if (training)
        convcore::batch_norm_forward_train(s, xp, w, b, eps, momentum, rm, rv, relu, yp, mp, ip);
      else
        convcore::batch_norm_forward_eval(s, xp, rm, rv, w, b, eps, relu, yp, mp, ip);
    }
    return py::make_tuple(y, mean, invstd);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"),
     py::arg("running_var"), py::arg("training"), py::arg("momentum"), py::arg("eps"),
     py::arg("relu") = false);

  // -> (grad_x | None, grad_weight | None, grad_bias | None). y: the forward
  // output when a ReLU was fused, else None.
  m.def("batch_norm_backward", [](const farray& gy, const farray& x, py::object y,
                                  py::object mean, py::object invstd, py::object weight,
                                  bool training, bool need_x, bool need_w, bool need_b) {
    const char* op = "batch_norm_backward";
    const auto s = bn_shape(op, x);
    if (gy.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), gy.shape()))
      throw py::value_error("batch_norm_backward: grad_out and input differ in shape");
    const float* yp = nullptr;
    farray ya;
    if (!y.is_none()) {
      ya = y.cast<farray>();
      if (ya.size() != x.size()) throw py::value_error("batch_norm_backward: y and input differ in size");
      yp = ya.data();
    }
    const double* mp = channel_vec<const double>(op, "mean", mean, s.C, false);
    const double* ip = channel_vec<const double>(op, "invstd", invstd, s.C, false);
    if (!mp || !ip) throw py::value_error("batch_norm_backward: mean and invstd are required");
    const float* w = channel_vec<const float>(op, "weight", weight, s.C, false);
    py::object gx = py::none(), gw = py::none(), gb = py::none();
    float *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
    if (need_x) {
      farray a(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
      gxp = a.mutable_data();
      gx = a;
    }
    if (need_w) {
      farray a(std::vector<py::ssize_t>{py::ssize_t(s.C)});
      gwp = a.mutable_data();
      gw = a;
    }
    if (need_b) {
      farray a(std::vector<py::ssize_t>{py::ssize_t(s.C)});
      gbp = a.mutable_data();
      gb = a;
    }
    const float *g = gy.data(), *xp = x.data();
    {
      py::gil_scoped_release nogil;
      convcore::batch_norm_backward(s, g, xp, yp, mp, ip, w, training, gxp, gwp, gbp);
    }
    return py::make_tuple(gx, gw, gb);
  });

  // p, grad, momentum_buffer | None (all float32, C-contiguous, one size);
  // p and buf are updated in place. init: buf is filled, not read.
  m.def("sgd_step", [](py::object param, const farray& g, py::object buf, float lr,
                       float momentum, float dampening, float weight_decay, bool nesterov,
                       bool init) {
    // Updated in place: a converted copy would silently drop the update.
    auto inplace = [](py::object a, const char* what) {
      if (!py::isinstance<farray>(a))
        throw py::type_error(std::string("sgd_step: ") + what +
                             " must be a C-contiguous float32 array");
      farray f = a.cast<farray>();
      if (!f.writeable()) throw py::value_error(std::string("sgd_step: ") + what + " is read-only");
      return f;
    };
    farray p = inplace(param, "the parameter");
    if (g.size() != p.size()) throw py::value_error("sgd_step: grad and parameter differ in size");
    float* bp = nullptr;
    farray ba;
    if (!buf.is_none()) {
      ba = inplace(buf, "momentum_buffer");
      if (ba.size() != p.size())
        throw py::value_error("sgd_step: momentum_buffer and parameter differ in size");
      bp = ba.mutable_data();
    }
    convcore::SgdHyper h;
    h.lr = lr; h.momentum = momentum; h.dampening = dampening; h.weight_decay = weight_decay;
    h.nesterov = nesterov;
    float* pp = p.mutable_data();
    const float* gp = g.data();
    const index_t n = p.size();
    py::gil_scoped_release nogil;
    convcore::sgd_step(n, pp, gp, bp, h, init);
  });
}

}  // namespace convcore_py
