// Run-time ISA dispatch: cpuid is read once and one table of kernel
// function pointers is chosen. Every caller goes through kernels(); the rest
// of the library never asks which CPU it is on.
#pragma once
#include "convcore/common.h"
#include "convcore/epilogue.h"

namespace convcore {

// One serial GEMM job on row-major matrices:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, then the epilogue
// (bias per row m, clamp). op(X) is X or X^T per the trans flags.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  index_t M = 0, N = 0, K = 0;
  const float* A = nullptr; index_t lda = 0;
  const float* B = nullptr; index_t ldb = 0;
  float* C = nullptr; index_t ldc = 0;
  float alpha = 1.f, beta = 0.f;
  Epilogue ep;
};

struct KernelTable {
  const char* isa = "baseline";  // "baseline", "avx2", "avx512"
  int simd_width = 4;            // floats per vector register
  int gemm_mr = 0, gemm_nr = 0;  // register tile of the SGEMM micro-kernel

  // Serial SGEMM (packing + micro-kernel). Callers split work across threads.
  void (*sgemm)(const GemmArgs&) = nullptr;
  // y[i] = max(x[i], 0) over n floats (x may equal y).
  void (*relu)(index_t n, const float* x, float* y) = nullptr;
};

// The table for this CPU (chosen on first use; CONVCORE_ISA=baseline|avx2|
// avx512 in the environment forces a lower one, for tests and benchmarks).
const KernelTable& kernels();

// What cpuid reports, independent of what was chosen.
struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512dq = false,
       avx512vl = false;
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
