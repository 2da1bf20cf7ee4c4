// One vector type per ISA, from GCC/Clang vector extensions. The same
// kernel source compiles to SSE2, AVX2+FMA or AVX-512 code depending on the
// flags its object library gets (CMakeLists.txt), inside the namespace
// convcore::cpu::CONVCORE_ISA.
#pragma once
#include <cstring>

#include "convcore/common.h"

#ifndef CONVCORE_ISA
#error "kernel sources are compiled once per ISA with CONVCORE_ISA defined"
#endif

namespace convcore {
namespace cpu {
namespace CONVCORE_ISA {

#if defined(CONVCORE_ISA_avx512)
constexpr int kVW = 16;
#elif defined(CONVCORE_ISA_avx2)
constexpr int kVW = 8;
#else
constexpr int kVW = 4;
#endif

typedef float vf __attribute__((vector_size(kVW * sizeof(float))));
// Same vector, but only 4-byte alignment: lets us load/store anywhere.
typedef float vfu __attribute__((vector_size(kVW * sizeof(float)), aligned(4)));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
inline vf splat(float s) { return vf{} + s; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }

}  // namespace CONVCORE_ISA
}  // namespace cpu
}  // namespace convcore
