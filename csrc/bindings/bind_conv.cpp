#include <cstring>

#include "convcore/conv2d.h"
#include "convcore/conv2d_packed.h"
#include "convcore/pw_dw.h"
#include "ndarray.h"
#include "packed_conv.h"
#include "params_from_py.h"

namespace convcore_py {

namespace {

// The residual's data (null for None), checked against y's shape; `hold`
// keeps the converted array alive for the call.
const float* residual_of(py::object residual, const farray& y, farray& hold) {
  if (residual.is_none()) return nullptr;
  hold = residual.cast<farray>();
  if (shape_of(hold) != shape_of(y))
    throw py::value_error("conv2d: residual must have the output's shape");
  return hold.data();
}

// An optional per-channel vector (`what` names it in the error): empty if
// None, else a float32 array of shape (n,).
farray channel_vector(py::object v, index_t n, const char* what) {
  if (v.is_none()) return farray();
  farray a = v.cast<farray>();
  if (a.ndim() != 1 || a.shape(0) != n)
    throw py::value_error(std::string("conv2d: ") + what + " must have shape (" +
                          std::to_string(n) + ",)");
  return a;
}

// y of shape [N, K, OH, OW]: a new array, or `out` checked for it.
farray output_for(const convcore::Conv2dParams& p, const farray& x, py::object out) {
  if (out.is_none()) return empty({p.N, p.K, p.OH, p.OW});
  if (!py::isinstance<farray>(out))
    throw py::type_error("conv2d: out must be a C-contiguous float32 array");
  farray y = out.cast<farray>();
  if (shape_of(y) != std::vector<index_t>{p.N, p.K, p.OH, p.OW})
    throw py::value_error("conv2d: out must have the output's shape");
  if (!y.writeable()) throw py::value_error("conv2d: out is read-only");
  if (y.data() == x.data()) throw py::value_error("conv2d: out must not be the input");
  return y;
}

// A packed conv's geometry, validated on a stand-in input just large enough
// for the kernel (each run brings its own N, H, W).
convcore::Conv2dParams packed_geometry(const std::vector<index_t>& ws,
                                       const std::vector<index_t>& stride,
                                       const std::vector<index_t>& pad,
                                       const std::vector<index_t>& dil, index_t groups) {
  const index_t dh = dil.size() == 2 ? std::max<index_t>(dil[0], 1) : 1;
  const index_t dw = dil.size() == 2 ? std::max<index_t>(dil[1], 1) : 1;
  const std::vector<index_t> xs = {1, ws[1] * groups, (ws[2] - 1) * dh + 1, (ws[3] - 1) * dw + 1};
  return conv_params_from("conv2d", xs, ws, stride, pad, dil, groups);
}

// y = clamp(packed(x) + bias + residual) with the GIL released, into `out`
// or a new array (PackedConv2d and PackedPwDw alike).
template <typename Packed>
farray run_packed(const Packed& pk, const convcore::Conv2dParams& p, const farray& x,
                  py::object residual, py::object out, convcore::Epilogue e, const float* bias) {
  farray y = output_for(p, x, out);
  farray r;
  const float* rp = residual_of(residual, y, r);
  e.bias = bias;
  const float* xp = x.data();
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    pk.run(p, xp, yp, e, rp);
  }
  return y;
}

convcore::ConvAlgo parse_algo(const std::string& s) {
  using convcore::ConvAlgo;
  for (ConvAlgo a : {ConvAlgo::Auto, ConvAlgo::Gemm1x1, ConvAlgo::Im2colGemm, ConvAlgo::Depthwise,
                     ConvAlgo::Winograd3x3, ConvAlgo::Direct, ConvAlgo::ImplicitGemm,
                     ConvAlgo::ShiftedGemm, ConvAlgo::Winograd3x3F4})
    if (s == convcore::conv_algo_name(a)) return a;
  throw py::value_error("conv2d: unknown algorithm '" + s + "'");
}

}  // namespace

farray PyPackedConv2d::run(const farray& x, py::object residual, py::object out) const {
  return run_packed(*pk, params_for(shape_of(x)), x, residual, out, ep, bias_ptr);
}

convcore::Conv2dParams PyPackedConv2d::params_for(const Shape& xs) const {
  return conv_params_from("conv2d", xs, wshape, stride, pad, dil, groups);
}

convcore::Conv2dParams PyPackedPwDw::params_for(const Shape& xs) const {
  if (xs.size() != 4)
    throw py::value_error("conv2d: input must be 4-D (N, C, H, W), got " +
                          std::to_string(xs.size()) + "-D");
  if (xs[1] != cin)
    throw py::value_error("conv2d: input has " + std::to_string(xs[1]) +
                          " channels, the fused 1x1 + depthwise expects " + std::to_string(cin));
  std::vector<index_t> es = {xs[0], wshape[0], xs[2], xs[3]};
  return conv_params_from("conv2d", es, wshape, stride, pad, dil, wshape[0]);
}

farray PyPackedPwDw::run(const farray& x, py::object residual, py::object out) const {
  return run_packed(*pk, params_for(shape_of(x)), x, residual, out, ep, bias_ptr);
}

namespace {
}  // namespace

void bind_conv(py::module_& m) {
  py::class_<PyPackedConv2d>(m, "PackedConv2d",
                             "conv2d with weights packed once: PackedConv2d(w, bias, stride, "
                             "padding(4), dilation, groups, lo, hi, algo='auto'); "
                             ".run(x, residual=None) -> y = clamp(conv(x)+bias+residual, lo, hi)")
      .def(py::init([](const farray& w, py::object bias, std::vector<index_t> stride,
                       std::vector<index_t> pad, std::vector<index_t> dil, index_t groups,
                       float lo, float hi, const std::string& algo) {
             if (w.ndim() != 4)
               throw py::value_error("conv2d: weight must be 4-D (K, C/groups, kh, kw)");
             if (groups <= 0) throw py::value_error("conv2d: groups must be positive");
             auto ws = shape_of(w);
             auto p = packed_geometry(ws, stride, pad, dil, groups);
             auto a = parse_algo(algo);
             PyPackedConv2d o;
             o.stride = stride; o.pad = pad; o.dil = dil; o.wshape = ws; o.groups = groups;
             o.ep.lo = lo; o.ep.hi = hi;
             o.bias = channel_vector(bias, p.K, "bias");
             o.has_bias = !bias.is_none();
             o.bias_ptr = o.has_bias ? o.bias.data() : nullptr;
             convcore::check_conv_algo(p, a);
             const float* wp = w.data();
             {
               py::gil_scoped_release nogil;
               o.pk = std::make_shared<convcore::PackedConv2d>(p, wp, a);
             }
             return o;
           }),
           py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("padding"),
           py::arg("dilation"), py::arg("groups"), py::arg("lo"), py::arg("hi"),
           py::arg("algo") = "auto")
      .def("run", &PyPackedConv2d::run, py::arg("x"), py::arg("residual") = py::none(),
           py::arg("out") = py::none())
      .def("algo", [](const PyPackedConv2d& o, const std::vector<index_t>& xs) {
        auto p = conv_params_from("conv2d", xs, o.wshape, o.stride, o.pad, o.dil, o.groups);
        return std::string(convcore::conv_algo_name(o.pk->algo_for(p)));
      }, py::arg("x_shape"));

  py::class_<PyPackedPwDw>(m, "PackedPwDw",
                           "a 1x1 conv (stride 1, no padding) feeding a depthwise conv, packed "
                           "once: PackedPwDw(w1, b1, lo1, hi1, w_dw, b_dw, stride, padding(4), "
                           "dilation, lo, hi); .run(x, residual=None, out=None) -> "
                           "clamp(dw(clamp(conv1x1(x)+b1, lo1, hi1))+b_dw+residual, lo, hi)")
      .def(py::init([](const farray& w1, py::object b1, float lo1, float hi1, const farray& wd,
                       py::object bd, std::vector<index_t> stride, std::vector<index_t> pad,
                       std::vector<index_t> dil, float lo, float hi) {
             if (w1.ndim() != 4 || w1.shape(2) != 1 || w1.shape(3) != 1)
               throw py::value_error("conv2d: the 1x1 weight must have shape (E, C, 1, 1)");
             if (wd.ndim() != 4 || wd.shape(1) != 1 || wd.shape(0) != w1.shape(0))
               throw py::value_error("conv2d: the depthwise weight must have shape (E, 1, kh, kw) "
                                     "with E = " + std::to_string(w1.shape(0)));
             const index_t E = w1.shape(0), cin = w1.shape(1);
             PyPackedPwDw o;
             o.stride = stride; o.pad = pad; o.dil = dil; o.wshape = shape_of(wd); o.cin = cin;
             o.ep.lo = lo; o.ep.hi = hi;
             auto p = packed_geometry(o.wshape, stride, pad, dil, E);
             const farray b1a = channel_vector(b1, E, "the 1x1 bias");
             o.bias = channel_vector(bd, E, "bias");
             o.has_bias = !bd.is_none();
             o.bias_ptr = o.has_bias ? o.bias.data() : nullptr;
             const float* w1p = w1.data();
             const float* b1p = b1.is_none() ? nullptr : b1a.data();
             const float* wdp = wd.data();
             {
               py::gil_scoped_release nogil;
               o.pk = std::make_shared<convcore::PackedPwDw>(E, cin, w1p, b1p, lo1, hi1, p, wdp);
             }
             return o;
           }),
           py::arg("w1"), py::arg("b1"), py::arg("lo1"), py::arg("hi1"), py::arg("w_dw"),
           py::arg("b_dw"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
           py::arg("lo"), py::arg("hi"))
      .def("run", &PyPackedPwDw::run, py::arg("x"), py::arg("residual") = py::none(),
           py::arg("out") = py::none())
      .def("algo", [](const PyPackedPwDw& o, const std::vector<index_t>& xs) {
        return std::string(o.pk->fused_for(o.params_for(xs)) ? "pw_dw_fused"
                                                            : "gemm1x1+depthwise_direct");
      }, py::arg("x_shape"))
      .def_property_readonly("in_channels", [](const PyPackedPwDw& o) { return o.cin; });

  m.def(
      "conv2d_forward",
      [](const farray& x, const farray& w, py::object bias, std::vector<index_t> stride,
         std::vector<index_t> pad, std::vector<index_t> dil, index_t groups, float lo, float hi,
         py::object residual, const std::string& algo) {
        const char* op = "conv2d";
        auto p = conv_params_from(op, shape_of(x), shape_of(w), stride, pad, dil, groups);
        convcore::Epilogue ep;
        ep.lo = lo; ep.hi = hi;
        farray b, r;
        if (!bias.is_none()) {
          b = bias.cast<farray>();
          if (b.ndim() != 1 || b.shape(0) != p.K)
            throw py::value_error("conv2d: bias must have shape (" + std::to_string(p.K) + ",)");
          ep.bias = b.data();
        }
        farray y = empty({p.N, p.K, p.OH, p.OW}, op);
        const float* rp = residual_of(residual, y, r);
        auto a = parse_algo(algo);
        const float *xp = x.data(), *wp = w.data();
        float* yp = y.mutable_data();
        {
          py::gil_scoped_release nogil;
          convcore::conv2d_forward(p, xp, wp, yp, ep, rp, a);
        }
        return y;
      },
      py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), py::arg("lo"), py::arg("hi"), py::arg("residual"),
      py::arg("algo") = "auto");

  m.def(
      "conv2d_backward",
      [](const farray& gy, const farray& x, const farray& w, std::vector<index_t> stride,
         std::vector<index_t> pad, std::vector<index_t> dil, index_t groups, bool need_x,
         bool need_w, bool need_b) {
        const char* op = "conv2d_backward";
        auto p = conv_params_from(op, shape_of(x), shape_of(w), stride, pad, dil, groups);
        std::vector<index_t> ys = {p.N, p.K, p.OH, p.OW};
        if (shape_of(gy) != ys)
          throw py::value_error("conv2d_backward: grad_out must have the output's shape");
        py::object gx = py::none(), gw = py::none(), gb = py::none();
        float *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
        if (need_x) { farray a = empty(shape_of(x)); gxp = a.mutable_data(); gx = a; }
        if (need_w) { farray a = empty(shape_of(w)); gwp = a.mutable_data(); gw = a; }
        if (need_b) { farray a = empty({p.K}); gbp = a.mutable_data(); gb = a; }
        const float *gyp = gy.data(), *xp = x.data(), *wp = w.data();
        {
          py::gil_scoped_release nogil;
          if (p.N == 0) {
            if (gwp) std::memset(gwp, 0, size_t(p.w_size()) * sizeof(float));
            if (gbp) std::memset(gbp, 0, size_t(p.K) * sizeof(float));
          } else {
            convcore::conv2d_backward_input(p, gyp, wp, gxp);
            if (gwp || gbp) convcore::conv2d_backward_weight(p, gyp, xp, gwp, gbp);
          }
        }
        return py::make_tuple(gx, gw, gb);
      });

  m.def("conv_algo",
        [](std::vector<index_t> xs, std::vector<index_t> ws, std::vector<index_t> stride,
           std::vector<index_t> pad, std::vector<index_t> dil, index_t groups) {
          auto p = conv_params_from("conv2d", xs, ws, stride, pad, dil, groups);
          return std::string(convcore::conv_algo_name(convcore::choose_conv_algo(p)));
        });
}

}  // namespace convcore_py
