#include "convcore/params.h"

namespace convcore {

index_t pooled_length(const char* op, const char* axis, index_t in, index_t k, index_t stride,
                      index_t pad_begin, index_t pad_end, index_t dil, bool ceil_mode) {
  if (k <= 0) fail(op, "kernel size along ", axis, " must be positive, got ", k);
  if (stride <= 0) fail(op, "stride along ", axis, " must be positive, got ", stride);
  if (dil <= 0) fail(op, "dilation along ", axis, " must be positive, got ", dil);
  if (pad_begin < 0 || pad_end < 0)
    fail(op, "padding along ", axis, " must be non-negative, got (", pad_begin, ", ", pad_end, ")");
  if (k > kMaxElements || dil > kMaxElements || in > kMaxElements || pad_begin > kMaxElements ||
      pad_end > kMaxElements)
    fail(op, "size along ", axis, " is absurdly large");
  const index_t eff = dil * (k - 1) + 1;
  const index_t padded = in + pad_begin + pad_end;
  if (eff > padded)
    fail(op, "kernel extent ", eff, " along ", axis, " is larger than the padded input (", padded,
         ")");
  const index_t span = padded - eff;
  index_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // ceil_mode: the last window must start inside the input or left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

void Conv2dParams::finalize(const char* op) {
  if (N < 0 || C <= 0 || H <= 0 || W <= 0)
    fail(op, "input must have positive C, H, W (and N >= 0), got (", N, ", ", C, ", ", H, ", ", W,
         ")");
  if (K <= 0) fail(op, "weight must have a positive number of output channels, got ", K);
  if (groups <= 0) fail(op, "groups must be positive, got ", groups);
  if (C % groups != 0) fail(op, "input channels ", C, " are not divisible by groups ", groups);
  if (K % groups != 0) fail(op, "output channels ", K, " are not divisible by groups ", groups);
  OH = pooled_length(op, "height", H, kh, stride_h, pad_t, pad_b, dil_h, false);
  OW = pooled_length(op, "width", W, kw, stride_w, pad_l, pad_r, dil_w, false);
  index_t xs = checked_mul(op, checked_mul(op, N, C, "input"), checked_mul(op, H, W, "input"), "input");
  index_t ys = checked_mul(op, checked_mul(op, N, K, "output"), checked_mul(op, OH, OW, "output"), "output");
  index_t ws = checked_mul(op, checked_mul(op, K, Cg(), "weight"), checked_mul(op, kh, kw, "weight"), "weight");
  (void)xs; (void)ys; (void)ws;
}

void Pool2dParams::finalize(const char* op) {
  if (N < 0 || C <= 0 || H <= 0 || W <= 0)
    fail(op, "input must have positive C, H, W (and N >= 0), got (", N, ", ", C, ", ", H, ", ", W,
         ")");
  // PyTorch's "padding at most half the kernel" rule lives in functional.py:
  // ONNX models may pad more, and the kernels handle all-padding windows.
  OH = pooled_length(op, "height", H, kh, stride_h, pad_t, pad_b, dil_h, ceil_mode);
  OW = pooled_length(op, "width", W, kw, stride_w, pad_l, pad_r, dil_w, ceil_mode);
  checked_mul(op, checked_mul(op, N, C, "input"), checked_mul(op, H, W, "input"), "input");
  checked_mul(op, checked_mul(op, N, C, "output"), checked_mul(op, OH, OW, "output"), "output");
}

}  // namespace convcore
