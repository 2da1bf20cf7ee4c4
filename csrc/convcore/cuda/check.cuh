// CUDA error checks (internal to the .cu files): every runtime call and every
// launch goes through CC_CUDA_CHECK, which throws convcore::cuda::CudaError
// with the call, the CUDA error name and text.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "convcore/cuda/runtime.h"

namespace convcore {
namespace cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* what, const char* file,
                                          int line) {
  throw CudaError(std::string("CUDA error ") + cudaGetErrorName(e) + " (" +
                  cudaGetErrorString(e) + ") in " + what + " at " + file + ":" +
                  std::to_string(line));
}

}  // namespace cuda
}  // namespace convcore

#define CC_CUDA_CHECK(expr)                                                        \
  do {                                                                             \
    cudaError_t cc_err_ = (expr);                                                  \
    if (cc_err_ != cudaSuccess)                                                    \
      ::convcore::cuda::throw_cuda_error(cc_err_, #expr, __FILE__, __LINE__);      \
  } while (0)

// After a kernel launch: configuration errors surface here, execution errors
// at the next synchronising call.
#define CC_CUDA_CHECK_LAUNCH(name) CC_CUDA_CHECK(cudaGetLastError())
