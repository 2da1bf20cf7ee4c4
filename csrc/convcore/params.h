// Geometry of a 2-D convolution or pooling window: sizes, strides, padding,
// dilation, and the derived output size. One struct each, validated once.
#pragma once
#include "convcore/common.h"

namespace convcore {

struct Conv2dParams {
  index_t N = 0, C = 0, H = 0, W = 0;  // input
  index_t K = 0;                       // output channels
  index_t kh = 1, kw = 1;
  index_t stride_h = 1, stride_w = 1;
  index_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  index_t dil_h = 1, dil_w = 1;
  index_t groups = 1;
  index_t OH = 0, OW = 0;  // filled by finalize()

  index_t Cg() const { return C / groups; }  // input channels per group
  index_t Kg() const { return K / groups; }  // output channels per group
  index_t x_size() const { return N * C * H * W; }
  index_t y_size() const { return N * K * OH * OW; }
  index_t w_size() const { return K * Cg() * kh * kw; }
  double flops() const { return 2.0 * double(N) * K * OH * OW * Cg() * kh * kw; }

  // Checks every field and computes OH/OW; throws std::invalid_argument
  // naming `op` and the offending value.
  void finalize(const char* op = "conv2d");
};

struct Pool2dParams {
  index_t N = 0, C = 0, H = 0, W = 0;
  index_t kh = 1, kw = 1;
  index_t stride_h = 1, stride_w = 1;
  index_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  index_t dil_h = 1, dil_w = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;
  index_t OH = 0, OW = 0;

  index_t x_size() const { return N * C * H * W; }
  index_t y_size() const { return N * C * OH * OW; }
  void finalize(const char* op = "pool2d");
};

// Output length of one spatial axis (PyTorch's formula, ceil_mode included:
// the last window must start inside the input or the left padding).
index_t pooled_length(const char* op, const char* axis, index_t in, index_t k, index_t stride,
                      index_t pad_begin, index_t pad_end, index_t dil, bool ceil_mode);

}  // namespace convcore
