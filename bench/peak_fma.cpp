// Measures this machine's FP32 FMA peak: independent FMA chains per ISA
// (SSE mul+add, AVX2+FMA, AVX-512F), on 1 thread and on all threads at once.
// Build and run (no -march=native needed; each kernel carries its target):
//   g++ -O2 -fopenmp bench/peak_fma.cpp -o /tmp/peak_fma && /tmp/peak_fma
// Prints GFLOP/s per ISA and thread count; the best round of several is kept
// because the machine is shared.
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>

// Twelve named accumulators (an array gets spilled to the stack by GCC).
#define CC_ACC12(T, init) T a0 = init(0.f), a1 = init(.1f), a2 = init(.2f), a3 = init(.3f), \
    a4 = init(.4f), a5 = init(.5f), a6 = init(.6f), a7 = init(.7f), a8 = init(.8f), \
    a9 = init(.9f), a10 = init(1.f), a11 = init(1.1f)
#define CC_STEP12(OP) OP(a0); OP(a1); OP(a2); OP(a3); OP(a4); OP(a5); OP(a6); OP(a7); \
    OP(a8); OP(a9); OP(a10); OP(a11)
#define CC_SUM12(ADD) ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))), \
    ADD(ADD(a8, a9), ADD(a10, a11)))

// 12 independent accumulators hide the FMA latency (4 cycles on Zen 4 and
// Skylake) on two FMA ports. Returns a value so the work is not removed.
__attribute__((target("avx2,fma"))) static float run_avx2(long iters) {
  CC_ACC12(__m256, _mm256_set1_ps);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define OP(x) x = _mm256_fmadd_ps(x, b, c)
  for (long it = 0; it < iters; ++it) { CC_STEP12(OP); }
#undef OP
  float o[8];
  _mm256_storeu_ps(o, CC_SUM12(_mm256_add_ps));
  return o[0];
}

__attribute__((target("avx512f"))) static float run_avx512(long iters) {
  CC_ACC12(__m512, _mm512_set1_ps);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define OP(x) x = _mm512_fmadd_ps(x, b, c)
  for (long it = 0; it < iters; ++it) { CC_STEP12(OP); }
#undef OP
  return _mm512_reduce_add_ps(CC_SUM12(_mm512_add_ps));
}

// Baseline SSE2 has no FMA: a multiply and an add count as 2 FLOPs.
static float run_sse(long iters) {
  CC_ACC12(__m128, _mm_set1_ps);
  const __m128 b = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f);
#define OP(x) x = _mm_add_ps(_mm_mul_ps(x, b), c)
  for (long it = 0; it < iters; ++it) { CC_STEP12(OP); }
#undef OP
  return _mm_cvtss_f32(CC_SUM12(_mm_add_ps));
}

using Fn = float (*)(long);

// FLOPs per iteration per thread: 12 chains x lanes x 2.
static double measure(Fn f, int lanes, int threads, long iters, int rounds) {
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    { float v = f(iters); if (v == 12345.f) sink = v; }
    auto t1 = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    const double gf = 12.0 * lanes * 2 * iters * threads / s * 1e-9;
    if (gf > best) best = gf;
  }
  (void)sink;
  return best;
}

int main(int argc, char** argv) {
  const int max_threads = omp_get_max_threads();
  long iters = 20000000;
  if (argc > 1) iters = atol(argv[1]);
  __builtin_cpu_init();
  struct { const char* name; Fn f; int lanes; bool ok; } isas[] = {
      {"sse2 (mul+add)", run_sse, 4, true},
      {"avx2+fma", run_avx2, 8, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
      {"avx512f", run_avx512, 16, __builtin_cpu_supports("avx512f") != 0},
  };
  std::printf("%-16s %8s %12s\n", "isa", "threads", "GFLOP/s");
  for (auto& isa : isas) {
    if (!isa.ok) continue;
    for (int t = 1; t <= max_threads; t *= 2) {
      const double gf = measure(isa.f, isa.lanes, t, iters, 5);
      std::printf("%-16s %8d %12.1f\n", isa.name, t, gf);
      if (t * 2 > max_threads && t != max_threads) {
        const double g2 = measure(isa.f, isa.lanes, max_threads, iters, 5);
        std::printf("%-16s %8d %12.1f\n", isa.name, max_threads, g2);
      }
    }
  }
  return 0;
}
