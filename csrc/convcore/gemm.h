// SGEMM entry points. gemm() splits one GEMM across the thread pool;
// kernels().sgemm is the serial building block for callers that already
// split work themselves.
#pragma once
#include "convcore/dispatch.h"

namespace convcore {

// C = alpha*op(A)*op(B) + beta*C, epilogue applied; uses get_num_threads().
void gemm(const GemmArgs& g);

}  // namespace convcore
