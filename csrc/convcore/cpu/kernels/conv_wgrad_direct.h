// Direct grad_weight micro-kernel (no im2col, no GEMM packing): for one input
// channel c, lane-wise partial sums
//   acc[k][ki][kj][lane] += dY[k][oh][ow] * x[c][oh*sh + ki*dh - pt][ow*sw + kj*dw - pl]
// over images, output rows oh and vectors of ow, for a block of kb output
// channels and kr kernel rows. x comes from zero-padded, stride-phase-split
// plane buffers (see conv2d_backward.cpp), so every tap reads a contiguous
// run of ow; dY rows are whole vectors (zero-padded past OW). Not in the
// shared dispatch table: conv2d_backward.cpp picks the set matching
// kernels().isa.
#pragma once
#include "convcore/common.h"

namespace convcore {
namespace cpu {

constexpr int kWgradMaxKB = 4;  // output channels per register block
constexpr int kWgradMaxKR = 3;  // kernel rows per register block
constexpr int kWgradMaxKW = 5;  // kernel width handled (3 or 5)

struct WgradDirectArgs {
  index_t images = 1;          // planes summed in this call
  index_t rows = 0;            // output rows OH per image
  index_t nvec = 0;            // vectors per output row
  index_t tail = 0;            // valid lanes of the last vector (1..simd width)
  const float* gy[kWgradMaxKB] = {};  // image 0, row 0 of dY for each of the kb output channels
  index_t gy_pitch = 0;        // floats between dY rows (a whole number of vectors)
  index_t gy_image = 0;        // floats between images of dY
  const float* x = nullptr;    // x buffer of image 0 at padded row ki0*dh, phase row start
  index_t x_image = 0;         // floats between the x buffers of consecutive images
  index_t x_row_step = 0;      // floats between the x rows of consecutive oh
  bool pair_rows = false;      // x_row_step == ki_off[1]: consecutive oh share x rows
  index_t ki_off[kWgradMaxKR] = {};  // offset of kernel row ki0 + i
  index_t kj_off[kWgradMaxKW] = {};  // offset of tap kj in the row
  float* acc = nullptr;        // acc[k * acc_k_stride + (i * kw + kj) * simd width + lane]
  index_t acc_k_stride = 0;
};

struct WgradDirectKernels {
  int simd_width = 0;
  // Register blocks that fit the register file (32 vector registers with
  // AVX-512, 16 otherwise): kb output channels x kr kernel rows, kw = 3 and 5.
  int kb3 = 0, kr3 = 0, kb5 = 0, kr5 = 0;
  // kb in [1, kb3 or kb5]; kr = kr3 or kr5 (or 1 for the last rows).
  void (*run)(const WgradDirectArgs& a, int kb, int kr, int kw) = nullptr;
};

#define CONVCORE_WGRAD_DECLARE(isa) \
  namespace isa {                   \
  void fill_wgrad_direct(WgradDirectKernels& t); \
  }
CONVCORE_WGRAD_DECLARE(baseline)
#if CONVCORE_HAVE_X86
CONVCORE_WGRAD_DECLARE(avx2)
CONVCORE_WGRAD_DECLARE(avx512)
#endif
#undef CONVCORE_WGRAD_DECLARE

}  // namespace cpu
}  // namespace convcore
