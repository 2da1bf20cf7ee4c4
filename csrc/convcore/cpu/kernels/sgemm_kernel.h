// Declarations of the per-ISA GEMM kernels, shared by their sources and table.cpp.
#pragma once
#include "convcore/cpu/kernels/gemm_ukernel.h"
#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

void sgemm(const GemmArgs& g);
void sgemv(const GemmArgs& g, index_t n0, index_t n1);
#if defined(CONVCORE_ISA_avx512)
void conv_pack_b_n8(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                    index_t nc, float* Bp);
void gemm_block_small(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp,
                      float* C, index_t ldc, const GemmTileOut& out);
void conv_pack_b_7(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                   index_t nc, float* Bp);
void gemm_block_7(index_t kc, index_t mc, index_t nc, const float* Ap, const float* Bp, float* C,
                  index_t ldc, const GemmTileOut& out);
void pw_dw(const PwDwArgs& a, index_t n, index_t k0, index_t nblk, index_t oh0, index_t oh1);
#endif
void winograd_input(const Conv2dParams& p, const float* xg, index_t c0, index_t kc,
                    index_t th0, index_t th1, float* Vp, index_t vstride, index_t nr);
void winograd_output(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                     index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                     const float* res_img, const float* bias, bool clamp, float lo, float hi);
void winograd4_input(const Conv2dParams& p, const float* xg, index_t c0, index_t kc,
                     index_t th0, index_t th1, float* Vp, index_t vstride, index_t nr);
void winograd4_output(const Conv2dParams& p, const float* M, index_t mstride, index_t ld,
                      index_t th0, index_t th1, index_t m0, index_t mc, float* y_img,
                      const float* res_img, const float* bias, bool clamp, float lo, float hi);
void conv_pack_b(const Conv2dParams& p, const float* xg, index_t p0, index_t kc, index_t j0,
                 index_t nc, float* Bp);
void gemm_block_shifted(index_t kc, index_t mc, index_t nc, const float* Ap, const float* base,
                        const index_t* offs, float* C, index_t ldc, const GemmTileOut& out);
#if defined(CONVCORE_ISA_avx512) || defined(CONVCORE_ISA_avx2)
void gemm_block_flat(index_t kc, index_t mc, index_t j0, index_t j1, const float* Ap,
                     const float* base, const index_t* offs, index_t Wf, index_t OW, float* C,
                     index_t ldc, const GemmTileOut& out);
#endif
void shifted_fill_rows(const float* xc, index_t H, index_t W, index_t sh, index_t sw, index_t ph,
                       index_t pad_t, index_t off, index_t r0, index_t r1, index_t Wf, float* d);
void shifted_unflatten(const float* Cb, index_t ldcb, index_t mc, index_t j0, index_t j1,
                       index_t Wf, index_t OW, index_t ohw, float* y, const float* res,
                       const float* bias, bool clamp, float lo, float hi);
void depthwise(const Conv2dParams& p, const float* x, const float* w, const float* bias,
               float* y, const float* residual, bool clamp, float lo, float hi, index_t nk0,
               index_t nk1);

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
