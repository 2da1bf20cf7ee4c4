// The packed convs the runner holds (_core.PackedConv2d, _core.PackedPwDw):
// weights packed once, geometry fixed, any N, H, W per run. Shared by their
// bindings (bind_conv.cpp) and the runner's native chains (bind_chain.cpp).
#pragma once
#include <memory>
#include <vector>

#include "convcore/conv2d_packed.h"
#include "convcore/pw_dw.h"
#include "ndarray.h"
#include "params_from_py.h"

namespace convcore_py {

inline Shape shape_of(const farray& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

// What both packed convs hold: the packed kernel, its geometry arguments,
// bias and epilogue.
template <class Packed>
struct PackedBinding {
  std::shared_ptr<Packed> pk;
  std::vector<index_t> stride, pad, dil, wshape;
  farray bias;
  const float* bias_ptr = nullptr;  // bias's data (null without one), read without the GIL
  bool has_bias = false;
  convcore::Epilogue ep;

  // y = clamp(conv(x) + bias + residual); no Python objects touched.
  void run_raw(const convcore::Conv2dParams& p, const float* x, float* y,
               const float* residual) const {
    convcore::Epilogue e = ep;
    e.bias = bias_ptr;
    pk->run(p, x, y, e, residual);
  }
};

// A conv with its weights packed once.
struct PyPackedConv2d : PackedBinding<convcore::PackedConv2d> {
  index_t groups = 1;
  // Geometry for an input shape (ValueError if it does not fit).
  convcore::Conv2dParams params_for(const Shape& xs) const;
  // out: write y there (a C-contiguous float32 array of y's shape, e.g. a
  // channel range of a batch-1 Concat's output) instead of a new array.
  farray run(const farray& x, py::object residual, py::object out) const;
};

// A 1x1 conv feeding a depthwise conv, run as one (convcore/pw_dw.h);
// stride, pad, dil and wshape are the depthwise conv's.
struct PyPackedPwDw : PackedBinding<convcore::PackedPwDw> {
  index_t cin = 0;
  // The depthwise conv's geometry for the 1x1's input shape.
  convcore::Conv2dParams params_for(const Shape& xs) const;
  farray run(const farray& x, py::object residual, py::object out) const;
};

}  // namespace convcore_py
