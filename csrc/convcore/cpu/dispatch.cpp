#include "convcore/dispatch.h"

#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <unistd.h>

#if CONVCORE_HAVE_X86
#include <cpuid.h>
#endif

namespace convcore {

CpuFeatures cpu_features() {
  CpuFeatures f;
#if CONVCORE_HAVE_X86
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d))
    f.intel = b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu;  // "GenuineIntel"
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  bool avx_os = false, avx512_os = false;
  if (osxsave) {
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    avx_os = (xlo & 0x6) == 0x6;            // XMM + YMM state
    avx512_os = avx_os && (xlo & 0xe0) == 0xe0;  // opmask + ZMM state
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = avx_os && (b & (1u << 5));
    f.avx512f = avx512_os && (b & (1u << 16));
    f.avx512dq = avx512_os && (b & (1u << 17));
    f.avx512bw = avx512_os && (b & (1u << 30));
    f.avx512vl = avx512_os && (b & (1u << 31));
  }
  f.fma = f.fma && avx_os;
#endif
  return f;
}

namespace {

KernelTable choose() {
  KernelTable t;
  cpu::baseline::fill_table(t);
#if CONVCORE_HAVE_X86
  const CpuFeatures f = cpu_features();
  const char* force = std::getenv("CONVCORE_ISA");
  const bool allow_avx2 = !force || std::strcmp(force, "baseline") != 0;
  const bool allow_avx512 = allow_avx2 && (!force || std::strcmp(force, "avx2") != 0);
  if (allow_avx2 && f.avx2 && f.fma) cpu::avx2::fill_table(t);
  if (allow_avx512 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) {
    cpu::avx512::fill_table(t);
    t.shifted_1x1 = !f.intel;
    t.winograd_small_direct = f.intel;
  }
#endif
  if (const char* s = std::getenv("CONVCORE_SHIFTED_1X1")) t.shifted_1x1 = std::atoi(s) != 0;
  if (const char* s = std::getenv("CONVCORE_WINOGRAD_SMALL_DIRECT"))
    t.winograd_small_direct = std::atoi(s) != 0;
  // (the direct path runs on the 7-row tiles, which only some tables have)
  t.winograd_small_direct = t.winograd_small_direct && t.gemm_block_rows7;
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  t.l1d_bytes = std::max(0L, sysconf(_SC_LEVEL1_DCACHE_SIZE));
#endif
  if (const char* s = std::getenv("CONVCORE_L1D_BYTES")) t.l1d_bytes = std::atol(s);
  return t;
}

}  // namespace

const KernelTable& kernels() {
  static const KernelTable table = choose();
  return table;
}

}  // namespace convcore
