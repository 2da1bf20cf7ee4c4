// Run-time ISA dispatch: cpuid is read once and one table of kernel
// function pointers is chosen. Every caller goes through kernels(); the rest
// of the library never asks which CPU it is on.
#pragma once
#include "convcore/common.h"
#include "convcore/epilogue.h"
#include "convcore/params.h"

namespace convcore {

// One serial GEMM job on row-major matrices:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, then the epilogue
// (bias per row m, clamp). op(X) is X or X^T per the trans flags.
// Products with at most this many rows take the GEMV path (kernels().sgemv).
constexpr index_t kGemvMaxM = 4;

struct GemmArgs {
  bool trans_a = false, trans_b = false;
  index_t M = 0, N = 0, K = 0;
  const float* A = nullptr; index_t lda = 0;
  const float* B = nullptr; index_t ldb = 0;
  float* C = nullptr; index_t ldc = 0;
  float alpha = 1.f, beta = 0.f;
  Epilogue ep;
};

// How a GEMM block writes its MR x NR register tiles back to C:
//   r = alpha*acc + beta*C; then, if `final`, r += bias[row] + residual, clamp.
// bias and residual are offset to the block's first row/column by the caller.
struct GemmTileOut {
  float alpha = 1.f, beta = 0.f;
  bool final = true;
  const float* bias = nullptr;
  const float* residual = nullptr;  // same layout as C with leading dim ldr
  index_t ldr = 0;
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
};

// Geometry of one depthwise plane for the direct backward kernels. The
// input plane lives in a zero-padded, stride-phase-split buffer
// buf[Hp][sw][L] (padded column c sits at buf[row][c % sw][c / sw]), so every
// tap reads or writes a contiguous run of OW floats whatever the stride.
struct DwPlaneGeom {
  index_t OH = 0, OW = 0, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  index_t L = 0;   // floats per phase row
  index_t gp = 0;  // row pitch of gy: OW rounded up to whole vectors, zero-padded
};

// One output row of max pooling with PyTorch's argmax: the window's input
// rows ih = ih0 + i*dil_h (i < nrows, all inside the plane) are read from a
// plane buffer whose rows are padded left by pad_l with -inf (row pitch
// `pitch`); taps are scanned in row-major order and a value wins if it is
// greater than the current max or NaN. arg starts at the first valid column
// of each window (first_col[ow]) on row ih0, as torch's does.
struct PoolArgmaxRow {
  const float* buf = nullptr;
  index_t pitch = 0, W = 0, pad_l = 0;
  index_t OW = 0, sw = 1, kw = 1, dw = 1;
  index_t ih0 = 0, dil_h = 1, nrows = 0;
  const int* first_col = nullptr;
  float* y = nullptr;  // may be null
  int* arg = nullptr;  // flat ih*W + iw (planes of fewer than 2^31 elements)
  // y and arg hold at least OW + 16 entries (and buf rows the row_len slack):
  // rows narrower than one vector then run as one vector block (lanes past
  // OW write scratch) instead of the scalar loop.
  bool narrow_ok = false;
};

// A 1x1 convolution (stride 1, no padding) straight into a depthwise one:
// the front of a MobileNet inverted-residual block, fused so that the wide
// intermediate (the "expansion") is never stored: each call computes it for
// one block of simd_width channels and one band of rows, channels-last in
// a buffer the depthwise taps read (cpu/kernels/pw_dw.cpp).
struct PwDwArgs {
  Conv2dParams dw;            // the depthwise conv, finalized; its C = K = E
  index_t cin = 0;            // channels of x
  const float* x = nullptr;   // [N][cin][H][W]
  const float* we = nullptr;  // 1x1 weights, [E / simd_width blocks][cin][simd_width]
  const float* be = nullptr;  // 1x1 bias, E padded to whole blocks
  float e_lo = 0.f, e_hi = 0.f;  // 1x1 clamp
  bool e_clamp = false;
  const float* wd = nullptr;  // depthwise taps [E][kh * kw]
  const float* bd = nullptr;  // depthwise bias [E] or null
  float* y = nullptr;         // [N][E][OH][OW]
  const float* residual = nullptr;
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
};

namespace cpu { struct PoolFwdArgs; }

struct KernelTable {
  const char* isa = "baseline";  // "baseline", "avx2", "avx512"
  int simd_width = 4;            // floats per vector register
  int gemm_mr = 0, gemm_nr = 0;  // register tile of the SGEMM micro-kernel

  index_t gemm_kc = 256;         // K block of the packed panels
  // Stride-1 unpadded 1x1 convs read B in place from x (the shifted GEMM)
  // rather than packing it. On Intel's AVX-512 cores the in-place rows
  // (one plane apart, hundreds per panel) stall the micro-kernel's loads
  // and packing is ~10% faster (ResNet-50's 56x56-14x14 1x1s, 1 and 2
  // threads); on Zen 4 in place measured 2-3% faster. Layers whose
  // channels do not pay for the packing stay in place either way
  // (in_place_1x1). CONVCORE_SHIFTED_1X1 (0/1) overrides.
  bool shifted_1x1 = true;
  index_t l1d_bytes = 0;  // L1 data cache per core (0: unknown), for loop orders
  // Winograd-shaped 3x3 layers on planes of <= 49 outputs run as implicit
  // GEMMs (small_plane_direct in conv2d_forward.cpp): on Intel's AVX-512
  // cores, whose two FMA units make F(2x2)'s extra weight traffic cost more
  // than its saved multiply-adds. CONVCORE_WINOGRAD_SMALL_DIRECT (0/1).
  bool winograd_small_direct = false;

  // Serial SGEMM (packing + micro-kernel). Callers split work across threads.
  void (*sgemm)(const GemmArgs&) = nullptr;
  // Columns [n0, n1) of a product with M <= kGemvMaxM rows and op(A) stored
  // row-major (trans_a false), streaming B in place (no packing).
  void (*sgemv)(const GemmArgs&, index_t n0, index_t n1) = nullptr;
  // Packs rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-row panels,
  // k-major (Ap[panel][k][MR]), zero-padding the last panel.
  void (*gemm_pack_a)(const float* A, index_t lda, bool trans, index_t i0, index_t mc,
                      index_t p0, index_t kc, float* Ap) = nullptr;
  // C[mc x nc] (op)= Ap * Bp, with Ap from gemm_pack_a (mc rows) and Bp in
  // NR-column panels, k-major (Bp[panel][k][NR], zero-padded), per `out`.
  void (*gemm_block)(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                     float* C, index_t ldc, const GemmTileOut& out) = nullptr;
  // Packs rows [p0, p0+kc) x columns [j0, j0+nc) of one image-group's
  // implicit im2col matrix (row r = (c, ki, kj), column j = (oh, ow)) into
  // NR-column panels as gemm_block wants them (cpu/kernels/conv_pack.cpp).
  void (*conv_pack_b)(const Conv2dParams& p, const float* x_group, index_t p0, index_t kc,
                      index_t j0, index_t nc, float* Bp) = nullptr;
  // Shifted GEMM (cpu/kernels/shifted_gemm.cpp): as gemm_block, but row k
  // of B is read in place at base + offs[k] (+ column), unaligned; reads
  // reach column roundup(nc, gemm_nr) - 1. shifted_unflatten copies rows of
  // a result computed over flat columns [j0, j1) of a Wf-wide grid (ow < OW
  // kept) into output planes (ohw apart) with bias, residual and clamp.
  void (*gemm_block_shifted)(index_t kc, index_t mc, index_t nc, const float* Ap,
                             const float* base, const index_t* offs, float* C, index_t ldc,
                             const GemmTileOut& out) = nullptr;
  void (*shifted_unflatten)(const float* Cb, index_t ldcb, index_t mc, index_t j0, index_t j1,
                            index_t Wf, index_t OW, index_t ohw, float* y, const float* res,
                            const float* bias, bool clamp, float lo, float hi) = nullptr;
  // Rows [r0, r1) of one channel's zero-padded phase plane of the shifted
  // GEMM's input, from d on (Wf floats a row): row r, column q is input
  // (r*sh + ph - pad_t, q*sw + off) of the H x W plane xc, or 0 outside it.
  void (*shifted_fill_rows)(const float* xc, index_t H, index_t W, index_t sh, index_t sw,
                            index_t ph, index_t pad_t, index_t off, index_t r0, index_t r1,
                            index_t Wf, float* d) = nullptr;
  // Optional (masked stores): as gemm_block_shifted over flat columns
  // [j0, j1), but each tile's row pieces are stored straight into the
  // output planes (C: row 0's plane, ldc apart; residual alike), dropping
  // the Wf - OW padding columns: no copy-out pass.
  void (*gemm_block_flat)(index_t kc, index_t mc, index_t j0, index_t j1, const float* Ap,
                          const float* base, const index_t* offs, index_t Wf, index_t OW,
                          float* C, index_t ldc, const GemmTileOut& out) = nullptr;
  // Winograd F(2x2,3x3) transforms (cpu/kernels/winograd.cpp): the input
  // transform of channels [c0, c0+kc) for tile rows [th0, th1) into 16 B
  // operands (NR panels, Vp + xi*vstride); the output transform of rows
  // [m0, m0+mc) of the 16 products M (+ xi*mstride, leading dim ld) with
  // bias, residual and clamp, into the image's output planes.
  void (*winograd_input)(const Conv2dParams& p, const float* x_group, index_t c0, index_t kc,
                         index_t th0, index_t th1, float* Vp, index_t vstride,
                         index_t nr) = nullptr;
  void (*winograd_output)(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                          index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                          const float* res_img, const float* bias, bool clamp, float lo,
                          float hi) = nullptr;
  // The same for Winograd F(4x4, 3x3) (cpu/kernels/winograd4.cpp): 36
  // operands / products, 4x4 output tiles.
  void (*winograd4_input)(const Conv2dParams& p, const float* x_group, index_t c0, index_t kc,
                          index_t th0, index_t th1, float* Vp, index_t vstride,
                          index_t nr) = nullptr;
  void (*winograd4_output)(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                           index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                           const float* res_img, const float* bias, bool clamp, float lo,
                           float hi) = nullptr;
  // Optional narrow-column variant of gemm_block/conv_pack_b (same A
  // packing), for output planes that waste much of a gemm_nr-wide panel.
  int gemm_nr_small = 0;
  void (*gemm_block_small)(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                           float* C, index_t ldc, const GemmTileOut& out) = nullptr;
  void (*conv_pack_b_small)(const Conv2dParams& p, const float* x_group, index_t p0, index_t kc,
                            index_t j0, index_t nc, float* Bp) = nullptr;
  // Optional transposed path for small planes: pixels as the GEMM's rows in
  // 7-row tiles (conv_pack_rows7 packs them, as conv_pack_b does with 7-wide
  // panels) times the transposed weights in gemm_nr-wide panels.
  void (*gemm_block_rows7)(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                           float* C, index_t ldc, const GemmTileOut& out) = nullptr;
  void (*conv_pack_rows7)(const Conv2dParams& p, const float* x_group, index_t p0, index_t kc,
                          index_t j0, index_t nc, float* Bp) = nullptr;
  // Depthwise conv (groups == C) of the output planes nk in [nk0, nk1)
  // (nk = n*K + k), bias/residual/clamp fused (cpu/kernels/depthwise.cpp).
  void (*depthwise)(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                    float* y, const float* residual, bool clamp, float lo, float hi,
                    index_t nk0, index_t nk1) = nullptr;
  // Optional (AVX-512): the fused 1x1 + depthwise (PwDwArgs) for image n,
  // channels [k0, k0 + nblk * simd_width) (nblk 1 or 2: two blocks share
  // each load of x) and output rows [oh0, oh1); 3x3 and 5x5 taps at stride 1
  // or 2 (equal on both axes).
  void (*pw_dw)(const PwDwArgs& a, index_t n, index_t k0, index_t nblk, index_t oh0,
                index_t oh1) = nullptr;
  // y[i] = x[i] < 0 ? 0 : x[i] over n floats (x may equal y; NaN, -0.0 pass).
  void (*relu)(index_t n, const float* x, float* y) = nullptr;

  // --- backward, pooling and activation kernels (cpu/kernels/*_bwd*, pool_*, activation_*)
  // gx[i] = x[i] > 0 ? gy[i] : 0 (NaN in x gives 0, as torch's threshold_backward).
  void (*relu_backward)(index_t n, const float* gy, const float* x, float* gx) = nullptr;
  // Sum of n floats, accumulated in a fixed lane order (deterministic).
  float (*sum)(index_t n, const float* x) = nullptr;
  // Depthwise backward on one plane (see DwPlaneGeom): buf += scatter of
  // gy (OH x OW) through the kh x kw taps w; acc[tap][lane] += lane-wise
  // partial sums of <gy, shifted buf> (simd_width lanes per tap; the caller
  // adds the lanes up in order once all images are in).
  void (*dw_bwd_input)(const DwPlaneGeom& d, const float* gy, const float* w, float* buf) = nullptr;
  void (*dw_bwd_weight)(const DwPlaneGeom& d, const float* gy, const float* buf, float* acc) = nullptr;
  // Max of n floats; NaN if any is NaN (as torch's max pooling).
  float (*max_nan)(index_t n, const float* x) = nullptr;
  // Pooling rows. Vertical: acc[i] = op(acc[i], src[i]) over n floats (max
  // propagates NaN). Horizontal: y[ow] = op over taps j < kw of
  // row[ow*sw + j*dw], where `row` is already padded with the identity.
  // havg divides each sum by div[ow].
  void (*pool_vmax)(index_t n, const float* src, float* acc) = nullptr;
  void (*pool_vadd)(index_t n, const float* src, float* acc) = nullptr;
  // The whole vertical pass in one sweep: dst[i] = op over r < nrows of
  // src[r*pitch + i], rows combined in order (same result as pool_vmax/vadd
  // applied row by row). Writes only dst[0, n).
  void (*pool_vmax_rows)(index_t n, const float* src, index_t pitch, index_t nrows, float* dst) = nullptr;
  void (*pool_vadd_rows)(index_t n, const float* src, index_t pitch, index_t nrows, float* dst) = nullptr;
  void (*pool_hmax)(index_t OW, index_t sw, index_t kw, index_t dw, const float* row, float* y) = nullptr;
  // Whole-plane forward pooling, planes [nc0, nc1) (cpu/kernels/pool_fwd.h).
  void (*pool_fwd_planes)(const cpu::PoolFwdArgs& a, index_t nc0, index_t nc1) = nullptr;
  void (*pool_havg)(index_t OW, index_t sw, index_t kw, const float* row, const float* div, float* y) = nullptr;
  void (*pool_argmax_row)(const PoolArgmaxRow& r) = nullptr;
  // Average-pool backward along a row, as a gather: out[iw] = sum over taps
  // j < kw with (iw + pad_l - j) = sw*t of g[t]. g is zero-padded: at least
  // kw/sw + 1 floats before g[0] and kw + 2*16 after g[OW-1].
  void (*pool_avg_hgather)(index_t W, index_t sw, index_t kw, index_t pad_l, const float* g,
                           float* out) = nullptr;
};

// The table for this CPU (chosen on first use; CONVCORE_ISA=baseline|avx2|
// avx512 in the environment forces a lower one, for tests and benchmarks).
const KernelTable& kernels();

// What cpuid reports, independent of what was chosen.
struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512dq = false,
       avx512vl = false;
  bool intel = false;  // vendor GenuineIntel (a tuning choice, see shifted_1x1)
};
CpuFeatures cpu_features();

// Tables compiled per ISA (cpu/kernels/*.cpp built once per ISA).
namespace cpu {
namespace baseline { void fill_table(KernelTable& t); }
#if CONVCORE_HAVE_X86
namespace avx2 { void fill_table(KernelTable& t); }
namespace avx512 { void fill_table(KernelTable& t); }
#endif
}  // namespace cpu

}  // namespace convcore
