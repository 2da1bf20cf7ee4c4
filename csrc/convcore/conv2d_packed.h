// A convolution's weights packed once for the GEMM micro-kernels and reused
// across calls (the ONNX runner's fast path). conv2d_forward() packs on every
// call through the same code.
#pragma once
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "convcore/conv2d.h"

namespace convcore {

struct AlignedFloats {
  struct Free { void operator()(float* p) const { std::free(p); } };
  std::unique_ptr<float, Free> ptr;
  index_t size = 0;
  void resize(index_t n);  // uninitialised, 64-byte aligned
  float* data() const { return ptr.get(); }
};

class PackedConv2d {
 public:
  // `geom` needs K, C, kh, kw, strides, padding, dilation and groups; its
  // N, H, W are ignored (each run() brings its own). `algo` may force one.
  PackedConv2d(const Conv2dParams& geom, const float* w, ConvAlgo algo = ConvAlgo::Auto);

  // y = clamp(conv(x) + bias + residual) for a finalize()d `p` whose
  // channels, kernel and geometry match the packed ones.
  void run(const Conv2dParams& p, const float* x, float* y, const Epilogue& ep,
           const float* residual) const;

  const Conv2dParams& geometry() const { return geom_; }
  // The weights in their original [K][C/groups][kh][kw] layout: kept only
  // where run() reads them (depthwise, im2col) or may pack them again.
  const float* weights() const { return w_.empty() ? nullptr : w_.data(); }
  // The algorithm run() uses for an input of this size.
  ConvAlgo algo_for(const Conv2dParams& p) const;

 private:
  Conv2dParams geom_;
  ConvAlgo forced_;
  std::vector<float> w_;  // original layout: depthwise, im2col, lazy Winograd
                          // F(4x4) packing; emptied once packed otherwise
  mutable AlignedFloats a_;  // GEMM-packed: [group][k block][M padded x kc], or
                          // Winograd: [xi][k block][K padded x kc]
  index_t mpad_ = 0, kc_ = 0, mr_ = 0;
  int wino_ = 0;          // a_ holds Winograd-transformed weights for output
                          // tiles wino_ x wino_ (2 or 4), else 0
  // Auto-chosen Winograd layers pack F(2x2) into a_ at construction (the
  // plane size is unknown then) and F(4x4) into f4_ on the first run on a
  // plane that wants it (choose_conv_algo). Packing F(4x4) frees a_ unless
  // a run used it, so a layer holds one transformed copy; a later F(2x2) run
  // packs it again. Under wino_mu_: runs take their pointer there.
  mutable std::mutex wino_mu_;
  mutable AlignedFloats f4_;
  mutable bool f2_used_ = false;
  const float* winograd_weights(int tile) const;
  // Transposed weights for the small-plane path, packed on first use:
  // [group][k block][Kg padded to NR x kc] in NR-column panels.
  mutable std::once_flag bt_once_;
  mutable AlignedFloats bt_;
  mutable index_t bt_npad_ = 0;
  const float* transposed_weights() const;
  std::vector<float> winograd2_unpack() const;  // original weights from F(2x2)
  // GemmJobs' last job split and what it was chosen for (choose_split's
  // search costs microseconds, a small layer's whole run tens).
  mutable std::mutex split_mu_;
  mutable index_t split_key_[7] = {-1, -1, -1, -1, -1, -1, -1};
  mutable index_t split_cb_ = 1, split_mb_ = 1;
  void pack_winograd(const float* w, int tile, AlignedFloats& out) const;
  friend struct ConvRunner;
  friend struct WinogradRunner;
  friend struct SmallPlaneRunner;
  friend struct ShiftedRunner;
  friend struct GemmJobs;
};

// Checks that `algo` can run `p`; throws std::invalid_argument otherwise.
void check_conv_algo(const Conv2dParams& p, ConvAlgo algo);

}  // namespace convcore
