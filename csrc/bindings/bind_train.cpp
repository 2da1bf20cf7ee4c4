// The training front end's kernels:
//   batch_norm_forward / batch_norm_backward: nn.functional.batch_norm's
//   float32 path. Shapes are checked here (ValueError naming the op); the
//   batch statistics come back as float64 arrays for backward.
//   sgd_step: optim.SGD's update of one float32 parameter, in place.
//   sgd_step_multi / adam_step_multi: optim.SGD's / optim.Adam's update of
//   a whole parameter group in one call (one Python->C++ crossing per step
//   instead of one per parameter).
//   cross_entropy: nn.functional.cross_entropy's float32 path, loss and
//   gradient in one pass.
//   add: Tensor addition of two same-shape float32 arrays (residual adds,
//   gradient sums in backward).
//   linear_backward: nn's Linear backward (ReLU mask, grad_w, grad_x,
//   grad_b) in one call.
#include <algorithm>
#include <cstdint>

#include "convcore/activation.h"
#include "convcore/adam.h"
#include "convcore/batch_norm.h"
#include "convcore/cross_entropy.h"
#include "convcore/elementwise.h"
#include "convcore/gemm.h"
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

// An array the optimiser updates in place: a converted copy would silently
// drop the update, so anything but a writeable C-contiguous float32 array is refused.
farray inplace_f32(py::handle a, const char* op, const std::string& what) {
  if (!py::isinstance<farray>(a))
    throw py::type_error(std::string(op) + ": " + what + " must be a C-contiguous float32 array");
  farray f = py::reinterpret_borrow<farray>(a);
  if (!f.writeable()) throw py::value_error(std::string(op) + ": " + what + " is read-only");
  return f;
}

farray readonly_f32(py::handle a, const char* op, const std::string& what) {
  if (!py::isinstance<farray>(a))
    throw py::type_error(std::string(op) + ": " + what + " must be a C-contiguous float32 array");
  return py::reinterpret_borrow<farray>(a);
}

std::string item(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

// A list or tuple (of arrays): a single array is a sequence too, but not one of these.
bool is_list_of_arrays(py::handle seq) {
  return py::isinstance<py::list>(seq) || py::isinstance<py::tuple>(seq);
}

// One list argument of a multi-tensor update: `n` arrays of the parameters' sizes.
// The arrays are kept referenced in `keep` while the GIL is released.
std::vector<float*> state_list(const char* op, const char* name, py::handle seq, size_t n,
                               const std::vector<index_t>& sizes, bool writable,
                               std::vector<farray>& keep) {
  if (!is_list_of_arrays(seq))
    throw py::type_error(std::string(op) + ": " + name + " must be a list of arrays");
  auto s = py::reinterpret_borrow<py::sequence>(seq);
  if (s.size() != n)
    throw py::value_error(std::string(op) + ": " + name + " has " + std::to_string(s.size()) +
                          " arrays for " + std::to_string(n) + " parameters");
  std::vector<float*> out(n);
  for (size_t i = 0; i < n; ++i) {
    farray a = writable ? inplace_f32(s[i], op, item(name, i)) : readonly_f32(s[i], op, item(name, i));
    if (index_t(a.size()) != sizes[i])
      throw py::value_error(std::string(op) + ": " + item(name, i) + " has " +
                            std::to_string(a.size()) + " elements, the parameter " +
                            std::to_string(sizes[i]));
    out[i] = const_cast<float*>(a.data());
    keep.push_back(std::move(a));
  }
  return out;
}

// The parameters of a multi-tensor update (writeable float32) and their sizes.
std::vector<float*> param_list(const char* op, py::handle seq, std::vector<index_t>& sizes,
                               std::vector<farray>& keep) {
  if (!is_list_of_arrays(seq))
    throw py::type_error(std::string(op) + ": params must be a list of arrays");
  auto s = py::reinterpret_borrow<py::sequence>(seq);
  const size_t n = s.size();
  std::vector<float*> out(n);
  sizes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    farray a = inplace_f32(s[i], op, item("params", i));
    sizes[i] = a.size();
    out[i] = a.mutable_data();
    keep.push_back(std::move(a));
  }
  return out;
}

// Labels as int64 values checked against the class count (ValueError naming the first bad one).
void check_labels(const std::int64_t* t, index_t n, index_t c) {
  for (index_t i = 0; i < n; ++i)
    if (t[i] < 0 || t[i] >= c)
      throw py::value_error("cross_entropy: label " + std::to_string(t[i]) +
                            " is out of range for " + std::to_string(c) +
                            " classes (labels must be in [0, " + std::to_string(c - 1) + "])");
}

// C (M x N, row-major) = op(A) @ op(B) on the job pool; A/B as stored
// (row-major, `a_cols`/`b_cols` floats per row), op = transpose if t*.
void gemm_into(const float* A, index_t a_cols, bool ta, const float* B, index_t b_cols, bool tb,
               index_t M, index_t N, index_t K, float* C) {
  if (M <= 0 || N <= 0) return;
  convcore::GemmArgs g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = A;
  g.lda = a_cols;
  g.B = B;
  g.ldb = b_cols;
  g.C = C;
  g.ldc = N;
  convcore::gemm(g);
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

  // One SGD step over lists of parameters, gradients and momentum buffers
  // (None when momentum == 0), as sgd_step for each; init: the buffers are
  // written, not read (the first step).
  m.def("sgd_step_multi", [](py::object params, py::object grads, py::object bufs, float lr,
                             float momentum, float dampening, float weight_decay, bool nesterov,
                             bool init) {
    const char* op = "sgd_step_multi";
    std::vector<farray> keep;
    std::vector<index_t> sizes;
    const auto ps = param_list(op, params, sizes, keep);
    const auto gs = state_list(op, "grads", grads, ps.size(), sizes, false, keep);
    std::vector<float*> bs(ps.size(), nullptr);
    if (!bufs.is_none()) bs = state_list(op, "momentum_buffers", bufs, ps.size(), sizes, true, keep);
    else if (momentum != 0.f) throw py::value_error("sgd_step_multi: momentum needs momentum_buffers");
    convcore::SgdHyper h;
    h.lr = lr; h.momentum = momentum; h.dampening = dampening; h.weight_decay = weight_decay;
    h.nesterov = nesterov;
    py::gil_scoped_release nogil;
    for (size_t i = 0; i < ps.size(); ++i) convcore::sgd_step(sizes[i], ps[i], gs[i], bs[i], h, init);
  }, py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("lr"),
     py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
     py::arg("init"));

  // One Adam/AdamW step over lists of parameters, gradients, first and
  // second moments (and running maxima with amsgrad, else None); steps[i]
  // (>= 1) is parameter i's step count including this one.
  m.def("adam_step_multi", [](py::object params, py::object grads, py::object exp_avgs,
                              py::object exp_avg_sqs, py::object max_exp_avg_sqs,
                              std::vector<index_t> steps, float lr, float beta1, float beta2,
                              float eps, float weight_decay, bool decoupled) {
    const char* op = "adam_step_multi";
    std::vector<farray> keep;
    std::vector<index_t> sizes;
    const auto ps = param_list(op, params, sizes, keep);
    const size_t n = ps.size();
    const auto gs = state_list(op, "grads", grads, n, sizes, false, keep);
    const auto ms = state_list(op, "exp_avgs", exp_avgs, n, sizes, true, keep);
    const auto vs = state_list(op, "exp_avg_sqs", exp_avg_sqs, n, sizes, true, keep);
    std::vector<float*> xs(n, nullptr);
    if (!max_exp_avg_sqs.is_none())
      xs = state_list(op, "max_exp_avg_sqs", max_exp_avg_sqs, n, sizes, true, keep);
    if (steps.size() != n)
      throw py::value_error("adam_step_multi: steps has " + std::to_string(steps.size()) +
                            " counts for " + std::to_string(n) + " parameters");
    for (index_t t : steps)
      if (t < 1) throw py::value_error("adam_step_multi: step counts must be >= 1");
    if (!(beta1 >= 0.f && beta1 < 1.f && beta2 >= 0.f && beta2 < 1.f))
      throw py::value_error("adam_step_multi: betas must be in [0, 1)");
    convcore::AdamHyper h;
    h.lr = lr; h.beta1 = beta1; h.beta2 = beta2; h.eps = eps; h.weight_decay = weight_decay;
    h.decoupled = decoupled;
    py::gil_scoped_release nogil;
    for (size_t i = 0; i < n; ++i)
      convcore::adam_step(sizes[i], ps[i], gs[i], ms[i], vs[i], xs[i], h, steps[i]);
  }, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"),
     py::arg("max_exp_avg_sqs"), py::arg("steps"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("decoupled"));

  // -> (loss, grad): loss a float32 0-d array ("mean", "sum") or (N,) ("none");
  // grad = d loss / d logits (N, C) float32 for "mean"/"sum", and the
  // per-row gradient (to be scaled by the incoming one) for "none".
  // Logits may have any strides (nn's Linear hands over a transposed view).
  m.def("cross_entropy", [](py::array logits, py::array labels, double label_smoothing,
                            const std::string& reduction) {
    const char* op = "cross_entropy";
    if (!logits.dtype().equal(py::dtype::of<float>()))
      throw py::type_error("cross_entropy: logits must be float32, got " +
                           std::string(py::str(logits.dtype())));
    if (logits.ndim() != 2)
      throw py::value_error("cross_entropy: logits must be 2-D (N, C), got " +
                            std::to_string(logits.ndim()) + "-D");
    if (!labels.dtype().equal(py::dtype::of<std::int64_t>()))
      throw py::type_error("cross_entropy: labels must be int64 class labels, got " +
                           std::string(py::str(labels.dtype())));
    const index_t N = logits.shape(0), C = logits.shape(1);
    if (labels.ndim() != 1 || labels.shape(0) != N)
      throw py::value_error("cross_entropy: labels must have shape (" + std::to_string(N) +
                            ",) to match logits of " + std::to_string(N) + " rows");
    if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
      throw py::value_error("cross_entropy: label_smoothing must be in [0, 1)");
    const bool mean = reduction == "mean", none = reduction == "none";
    if (!mean && !none && reduction != "sum")
      throw py::value_error("cross_entropy: reduction must be 'mean', 'sum' or 'none', got '" +
                            reduction + "'");
    // Element strides; an unaligned view (rare) goes through a contiguous copy.
    py::array z = logits;
    if (z.strides(0) % py::ssize_t(sizeof(float)) || z.strides(1) % py::ssize_t(sizeof(float)))
      z = farray::ensure(logits);
    auto t = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(labels);
    check_labels(t.data(), N, C);
    convcore::CrossEntropyShape s;
    s.N = N;
    s.C = C;
    s.row_stride = z.strides(0) / py::ssize_t(sizeof(float));
    s.col_stride = z.strides(1) / py::ssize_t(sizeof(float));
    farray grad = empty({N, C}, op);
    farray loss = none ? empty({N}, op) : farray(std::vector<py::ssize_t>{});
    const float scale = mean ? float(1.0 / double(std::max<index_t>(N, 1))) : 1.f;
    const float* zp = static_cast<const float*>(z.data());
    const std::int64_t* tp = t.data();
    float* gp = grad.mutable_data();
    float* lp = loss.mutable_data();
    double total;
    {
      py::gil_scoped_release nogil;
      total = convcore::cross_entropy_forward(s, zp, tp, float(label_smoothing), scale, gp,
                                              none ? lp : nullptr);
    }
    if (!none) *lp = float(mean ? (N ? total / double(N) : NAN) : total);
    return py::make_tuple(loss, grad);
  }, py::arg("logits"), py::arg("labels"), py::arg("label_smoothing") = 0.0,
     py::arg("reduction") = "mean");

  // a + b for same-shape float32 arrays (any layout in, C-contiguous out).
  m.def("add", [](const farray& a, const farray& b) {
    if (a.ndim() != b.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), b.shape()))
      throw py::value_error("add: the two arrays differ in shape (broadcasting is numpy's job)");
    farray out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
    const float *ap = a.data(), *bp = b.data();
    float* op = out.mutable_data();
    const index_t n = a.size();
    py::gil_scoped_release nogil;
    convcore::add(n, ap, bp, op);
    return out;
  }, py::arg("a"), py::arg("b"));

  // Linear's backward for y.T = W @ x.T + b (ReLU optional), one call. Each
  // operand comes as it is stored, with a flag saying whether it is the
  // transposed layout, so the GEMMs read it through their transpose flags:
  //   g: (rows, out), or (out, rows) if g_t;  x: (rows, in), or (in, rows) if x_t;
  //   w: (out, in);  y_t: the forward output (out, rows) when a ReLU was fused, else None.
  // -> (grad_x in x's layout | None, grad_w (out, in) | None, grad_b (out,) | None)
  m.def("linear_backward", [](const farray& g, bool g_t, const farray& x, bool x_t,
                              const farray& w, py::object y_t, bool need_x, bool need_w,
                              bool need_b) {
    const char* op = "linear_backward";
    if (g.ndim() != 2 || x.ndim() != 2 || w.ndim() != 2)
      throw py::value_error("linear_backward: grad_out, x and weight must be 2-D");
    const index_t fout = w.shape(0), fin = w.shape(1);
    const index_t rows = g_t ? g.shape(1) : g.shape(0);
    if ((g_t ? g.shape(0) : g.shape(1)) != fout)
      throw py::value_error("linear_backward: grad_out has " +
                            std::to_string(g_t ? g.shape(0) : g.shape(1)) +
                            " features, the weight " + std::to_string(fout));
    if ((x_t ? x.shape(0) : x.shape(1)) != fin || (x_t ? x.shape(1) : x.shape(0)) != rows)
      throw py::value_error("linear_backward: x does not match grad_out's rows and the "
                            "weight's input features");
    const float* gp = g.data();
    bool gt = g_t;
    farray masked, ya;
    const float* yp = nullptr;
    float* mp = nullptr;
    if (!y_t.is_none()) {  // the ReLU's mask, in y's (out, rows) layout
      if (!py::isinstance<farray>(y_t))
        throw py::type_error("linear_backward: y must be a C-contiguous float32 array");
      ya = py::reinterpret_borrow<farray>(y_t);
      if (ya.ndim() != 2 || ya.shape(0) != fout || ya.shape(1) != rows)
        throw py::value_error("linear_backward: y must have shape (out, rows)");
      masked = empty({fout, rows}, op);
      yp = ya.data();
      mp = masked.mutable_data();
    }
    py::object gx = py::none(), gw = py::none(), gb = py::none();
    float *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
    if (need_x) {
      farray a = x_t ? empty({fin, rows}, op) : empty({rows, fin}, op);
      gxp = a.mutable_data();
      gx = a;
    }
    if (need_w) {
      farray a = empty({fout, fin}, op);
      gwp = a.mutable_data();
      gw = a;
    }
    if (need_b) {
      farray a = empty({fout}, op);
      gbp = a.mutable_data();
      gb = a;
    }
    const float *xp = x.data(), *wp = w.data();
    {
      py::gil_scoped_release nogil;
      if (yp) {
        if (gt) {
          convcore::relu_backward(fout * rows, gp, yp, mp);
        } else {  // row-major g: mask while transposing (rare: a ReLU'd Linear before the loss)
          for (index_t o = 0; o < fout; ++o)
            for (index_t r = 0; r < rows; ++r)
              mp[o * rows + r] = yp[o * rows + r] > 0.f ? gp[r * fout + o] : 0.f;
        }
        gp = mp;
        gt = true;
      }
      const index_t g_cols = gt ? rows : fout, x_cols = x_t ? rows : fin;
      if (gwp) gemm_into(gp, g_cols, !gt, xp, x_cols, x_t, fout, fin, rows, gwp);  // g.T @ x
      if (gxp) {
        if (x_t)  // (in, rows) = W.T @ g.T
          gemm_into(wp, fin, true, gp, g_cols, !gt, fin, rows, fout, gxp);
        else  // (rows, in) = g @ W
          gemm_into(gp, g_cols, gt, wp, fin, false, rows, fin, fout, gxp);
      }
      if (gbp) {  // sums over rows, in float64
        for (index_t o = 0; o < fout; ++o) {
          double acc = 0.0;
          if (gt)
            for (index_t r = 0; r < rows; ++r) acc += gp[o * rows + r];
          else
            for (index_t r = 0; r < rows; ++r) acc += gp[r * fout + o];
          gbp[o] = float(acc);
        }
      }
    }
    return py::make_tuple(gx, gw, gb);
  }, py::arg("grad_out"), py::arg("g_t"), py::arg("x"), py::arg("x_t"), py::arg("weight"),
     py::arg("y_t"), py::arg("need_x"), py::arg("need_w"), py::arg("need_b"));
}

}  // namespace convcore_py
