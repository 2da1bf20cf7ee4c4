// Kernel sub-tables kept outside the shared KernelTable (batch norm, direct
// grad_weight): each is filled by the copy of its ISA that kernels() runs,
// so CONVCORE_ISA and cpuid choose it as they choose every kernel.
#pragma once
#include <string>

#include "convcore/dispatch.h"

namespace convcore {
namespace cpu {

// fill_* functions of one sub-table, one per ISA namespace.
#if CONVCORE_HAVE_X86
#define CONVCORE_PER_ISA(fill) &cpu::baseline::fill, &cpu::avx2::fill, &cpu::avx512::fill
#else
#define CONVCORE_PER_ISA(fill) &cpu::baseline::fill, nullptr, nullptr
#endif

template <class T>
T isa_table(void (*baseline)(T&), void (*avx2)(T&), void (*avx512)(T&)) {
  T t;
  const std::string isa = kernels().isa;
  if (isa == "avx512" && avx512) avx512(t);
  else if (isa == "avx2" && avx2) avx2(t);
  else baseline(t);
  return t;
}

}  // namespace cpu
}  // namespace convcore
