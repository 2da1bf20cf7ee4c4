// The implicit-GEMM conv forward on TF32 tensor cores (sm_80+; internal).
// Same problem and Loader/Store interfaces as igemm.cuh, for the forward
// loaders, which also give element addresses (a_addr, b_addr) so that tiles
// move global -> shared memory with cp.async, no registers in between:
//   const float* a_addr(const Row&, int k) const;
//   bool b_addr(const Col&, int k, const float*& p) const;  // false: zero
//
// BMx128x16 block tiles (BM = 128 or 64), 8 warps as 2x4, each warp
// (BM/2)x32 = (BM/32)x2 wmma 16x16x8 fragments, FP32 accumulation. A
// kStages-deep pipeline keeps kStages-1 tiles in flight while one is
// multiplied (measured: with one tile of register-staged prefetch the
// kernel waited on global loads). Fragments are rounded to TF32 (nearest)
// after they load: fed raw, the tensor cores truncate (keep the top 19 bits),
// a bias that compounded to 2e-2 relative error through ResNet-50's 53 convs
// (rounded: 5e-4). Split-K like the FP32 kernel (grid z = G * splits).
//
// The block body takes the copy/fragment/barrier operations as a policy
// (Ops): TcDeviceOps on the GPU; tests/cuda_host/ substitutes synchronous
// copies and plain 16x16 matrices to check the tiling and indexing on the CPU
// (it cannot check the pipeline's waits: the GPU tests do).
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

#include "convcore/cuda/igemm.cuh"

namespace convcore {
namespace cuda {
namespace detail {

constexpr int kTcBN = 128, kTcBK = 16, kTcThreads = 256, kStages = 3;
// Row-major A tile [BM][LDA]: a pitch of 20 floats puts the 8 rows a
// fragment load reads in distinct banks (24, the first choice, paired rows
// 0 and 4: 2-way conflicts) and keeps 16-row steps 32-byte aligned.
constexpr int kTcLDA = kTcBK + 4;
constexpr int kTcLDB = kTcBN + 8;   // row-major B tile [BK][LDB]
// Shared memory for the tiles (the k table, if any, follows them).
template <int BM>
constexpr int tc_smem_floats() { return kStages * (BM * kTcLDA + kTcBK * kTcLDB); }

#pragma nv_exec_check_disable
template <int BM, class L, class S, class Ops>
__host__ __device__ __forceinline__ void igemm_tf32_block(const L& ld, const S& st0, int M,
                                                          int N, int Kd, int splits, int t,
                                                          int bx, int by, int bz, float* smem,
                                                          int2* table, const Ops& ops) {
  constexpr int BN = kTcBN, BK = kTcBK, NT = kTcThreads;
  constexpr int LDA = kTcLDA, LDB = kTcLDB;
  constexpr int A_PER = BM * BK / NT;  // 8 (BM 128) or 4 (BM 64): one row's run of k
  constexpr int B_PER = BN * BK / NT;  // 8
  constexpr int B_STEP = NT / BN;      // 2
  constexpr int WM = BM / 2, FM = WM / 16;  // warp tile rows, fragments along M
  static_assert(BM == 128 || BM == 64, "TF32 tile");
  static_assert(A_PER % 4 == 0, "A runs are whole 16-byte copies");
  float* As = smem;                         // [kStages][BM][LDA]
  float* Bs = smem + kStages * BM * LDA;    // [kStages][BK][LDB]

  const int warp = t / 32, lane = t % 32;
  const int g = bz / splits, split = bz % splits;
  const int m0 = by * BM, n0 = bx * BN;
  const int tiles = (Kd + BK - 1) / BK;
  const int per = (tiles + splits - 1) / splits;
  const int kt0 = split * per, kt1 = kt0 + per < tiles ? kt0 + per : tiles;
  if (kt0 >= kt1) return;  // whole block leaves together: no barrier skipped
  const S st = st0.at_split(split);

  fill_table(ld, table, t, NT, Kd, OpsSync<Ops>{ops});
  const int a_m = t / (BK / A_PER), a_k = (t % (BK / A_PER)) * A_PER;
  const int b_n = t % BN, b_k = t / BN;
  const bool a_ok = m0 + a_m < M, b_ok = n0 + b_n < N;
  const typename L::Row row = ld.row(g, a_ok ? m0 + a_m : 0);
  const typename L::Col col = ld.col(g, b_ok ? n0 + b_n : 0, table);
  const bool vec = ld.vec_a >= 4;  // rows allow 16-byte copies
  const float* any = ld.a_addr(row, 0);  // a valid address for zero-filled copies

  // Queues the copies of tile kt into stage `stage` (commit is the caller's).
  auto issue = [&](int kt, int stage) {
    const int kb = kt * BK;
    float* a = As + stage * BM * LDA + a_m * LDA + a_k;
    if (vec) {
#pragma unroll
      for (int v = 0; v < A_PER; v += 4) {
        const int k = kb + a_k + v;
        const bool ok = a_ok && k < Kd;  // Kd % 4 == 0: all four or none
        ops.cp16(a + v, ok ? ld.a_addr(row, k) : any, ok);
      }
    } else {
#pragma unroll
      for (int i = 0; i < A_PER; ++i) {
        const int k = kb + a_k + i;
        const bool ok = a_ok && k < Kd;
        ops.cp4(a + i, ok ? ld.a_addr(row, k) : any, ok);
      }
    }
    float* b = Bs + stage * BK * LDB + b_k * LDB + b_n;
#pragma unroll
    for (int j = 0; j < B_PER; ++j) {
      const int k = kb + b_k + j * B_STEP;
      const float* p = any;
      const bool ok = b_ok && k < Kd && ld.b_addr(col, k, p);
      ops.cp4(b + j * B_STEP * LDB, ok ? p : any, ok);
    }
  };

  const int wm = warp / 4, wn = warp % 4;  // warp tile origin: (wm*WM, wn*32)
  typename Ops::FragC acc[FM][2];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) ops.zero(acc[i][j]);

  // Prologue: kStages-1 tiles in flight. Every step commits one group (maybe
  // empty) so that "all but the newest kStages-2 groups done" always means
  // "the tile about to be used has landed".
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (kt0 + s < kt1) issue(kt0 + s, s);
    ops.commit();
  }
  for (int kt = kt0; kt < kt1; ++kt) {
    const int stage = (kt - kt0) % kStages;
    ops.template wait<kStages - 2>();
    // Tile kt is visible to all; every warp is done with tile kt-1, whose
    // stage the next issue overwrites.
    ops.sync();
    const int next = kt + kStages - 1;
    if (next < kt1) issue(next, (next - kt0) % kStages);
    ops.commit();
    const float* a = As + stage * BM * LDA;
    const float* b = Bs + stage * BK * LDB;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      typename Ops::FragA fa[FM];
      typename Ops::FragB fb[2];
#pragma unroll
      for (int i = 0; i < FM; ++i) ops.load_a(fa[i], a + (wm * WM + i * 16) * LDA + kk, LDA);
#pragma unroll
      for (int j = 0; j < 2; ++j) ops.load_b(fb[j], b + kk * LDB + wn * 32 + j * 16, LDB);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) ops.mma(acc[i][j], fa[i], fb[j]);
    }
  }
  ops.template wait<0>();  // (only empty groups can remain)
  ops.sync();              // every warp is done with the tiles: reuse as scratch

  // Epilogue: each warp spills one 16x16 fragment at a time to its own
  // scratch, then applies the Store element by element with bounds checks.
  float* scratch = smem + warp * 256;
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      ops.store(scratch, acc[i][j], 16);
      ops.syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int m = m0 + wm * WM + i * 16 + e / 16;
        const int n = n0 + wn * 32 + j * 16 + e % 16;
        if (m < M && n < N) st(g, m, n, scratch[e]);
      }
      ops.syncwarp();
    }
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
struct TcDeviceOps {
  using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8,
                                       nvcuda::wmma::precision::tf32, nvcuda::wmma::row_major>;
  using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8,
                                       nvcuda::wmma::precision::tf32, nvcuda::wmma::row_major>;
  using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;
  // cp.async with a source size of 0 when !ok: the 4/16 bytes are zero-filled.
  __device__ void cp4(float* dst, const float* src, bool ok) const {
    const unsigned d = unsigned(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src),
                 "r"(ok ? 4 : 0));
  }
  __device__ void cp16(float* dst, const float* src, bool ok) const {
    const unsigned d = unsigned(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
                 "r"(ok ? 16 : 0));
  }
  __device__ void commit() const { asm volatile("cp.async.commit_group;\n" ::); }
  template <int N>
  __device__ void wait() const { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
  __device__ void zero(FragC& c) const { nvcuda::wmma::fill_fragment(c, 0.f); }
  __device__ void load_a(FragA& f, const float* p, int ldm) const {
    nvcuda::wmma::load_matrix_sync(f, p, ldm);
#pragma unroll
    for (int e = 0; e < f.num_elements; ++e) f.x[e] = nvcuda::wmma::__float_to_tf32(f.x[e]);
  }
  __device__ void load_b(FragB& f, const float* p, int ldm) const {
    nvcuda::wmma::load_matrix_sync(f, p, ldm);
#pragma unroll
    for (int e = 0; e < f.num_elements; ++e) f.x[e] = nvcuda::wmma::__float_to_tf32(f.x[e]);
  }
  __device__ void mma(FragC& c, const FragA& a, const FragB& b) const {
    nvcuda::wmma::mma_sync(c, a, b, c);
  }
  __device__ void store(float* p, const FragC& c, int ldm) const {
    nvcuda::wmma::store_matrix_sync(p, c, ldm, nvcuda::wmma::mem_row_major);
  }
  __device__ void sync() const { __syncthreads(); }
  __device__ void syncwarp() const { __syncwarp(); }
};
#endif

// Dynamic shared memory: the tiles, then the k table (kTable loaders).
template <int BM, class L, class S>
__global__ void __launch_bounds__(kTcThreads, 2)
    igemm_tf32_kernel(const L ld, const S st, int M, int N, int Kd, int splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) float smem[];
  int2* table = reinterpret_cast<int2*>(smem + tc_smem_floats<BM>());
  igemm_tf32_block<BM>(ld, st, M, N, Kd, splits, threadIdx.x, blockIdx.x, blockIdx.y, blockIdx.z,
                       smem, table, TcDeviceOps{});
#endif
}

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
