#include "params_from_py.h"

#include <string>

namespace convcore_py {

convcore::Conv2dParams conv_params_from(const char* op, const Shape& xs, const Shape& ws,
                                        const Shape& stride, const Shape& pad, const Shape& dil,
                                        index_t groups) {
  if (xs.size() != 4) throw py::value_error(std::string(op) + ": input must be 4-D (N, C, H, W)");
  if (ws.size() != 4)
    throw py::value_error(std::string(op) + ": weight must be 4-D (K, C/groups, kh, kw)");
  auto s = to_array<2>(stride, op, "stride");
  auto pd = to_array<4>(pad, op, "padding");
  auto d = to_array<2>(dil, op, "dilation");
  convcore::Conv2dParams p;
  p.N = xs[0]; p.C = xs[1]; p.H = xs[2]; p.W = xs[3];
  p.K = ws[0]; p.kh = ws[2]; p.kw = ws[3];
  p.stride_h = s[0]; p.stride_w = s[1];
  p.pad_t = pd[0]; p.pad_l = pd[1]; p.pad_b = pd[2]; p.pad_r = pd[3];
  p.dil_h = d[0]; p.dil_w = d[1];
  p.groups = groups;
  if (groups > 0 && xs[1] % groups == 0 && ws[1] != xs[1] / groups)
    throw py::value_error(std::string(op) + ": weight has " + std::to_string(ws[1]) +
                          " input channels per group, but input has " + std::to_string(xs[1]) +
                          " channels in " + std::to_string(groups) + " group(s) (expected " +
                          std::to_string(xs[1] / groups) + ")");
  p.finalize(op);
  return p;
}

convcore::Pool2dParams pool_params_from(const char* op, const Shape& xs, const Shape& k,
                                        const Shape& stride, const Shape& pad, const Shape& dil,
                                        bool ceil_mode, bool count_include_pad) {
  if (xs.size() != 4) throw py::value_error(std::string(op) + ": input must be 4-D (N, C, H, W)");
  auto ka = to_array<2>(k, op, "kernel_size");
  auto sa = to_array<2>(stride, op, "stride");
  auto pa = to_array<4>(pad, op, "padding");
  auto da = to_array<2>(dil, op, "dilation");
  convcore::Pool2dParams p;
  p.N = xs[0]; p.C = xs[1]; p.H = xs[2]; p.W = xs[3];
  p.kh = ka[0]; p.kw = ka[1];
  p.stride_h = sa[0]; p.stride_w = sa[1];
  p.pad_t = pa[0]; p.pad_l = pa[1]; p.pad_b = pa[2]; p.pad_r = pa[3];
  p.dil_h = da[0]; p.dil_w = da[1];
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  p.finalize(op);
  return p;
}

}  // namespace convcore_py
