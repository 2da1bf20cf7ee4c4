// Implicit-GEMM kernels (internal). A problem is G independent GEMMs
//   C[g] (M x N) = A[g] (M x Kd) * B[g] (Kd x N)
// whose operands are never materialised: a Loader produces A and B elements
// from the tensors (im2col on the fly), a Store consumes each C element (the
// conv epilogue, a scatter, an atomic add). One kernel body thus serves conv
// forward, backward-data and backward-weight.
//
// Loader interface (all __device__, indices in 32 bits; the host checks
// M, N, Kd < 2^31):
//   struct Row; Row row(int g, int m) const;   // per-thread, once per block
//   float a(const Row&, int k) const;          // A[g][m][k]
//   struct Col; Col col(int g, int n) const;
//   float b(const Col&, int k) const;          // B[g][k][n]
// Store: void operator()(int g, int m, int n, float v) const;
//
// Grid: x = ceil(N/BN), y = ceil(M/BM), z = G * splits. With splits > 1
// each block reduces only its slice of Kd (split-K; the Store must add).
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

namespace convcore {
namespace cuda {
namespace detail {

// --- FP32 SIMT kernel: BMxBN block tile, TMxTN register tile per thread,
// double-buffered shared memory (global loads of tile k+1 overlap the FMAs
// on tile k). 128x128x8 / 8x8 is the classic large-GEMM shape; 64x64x8 / 4x4
// keeps more blocks in flight on small layers.
//
// The block body is a __host__ __device__ function of (thread, block, shared
// tiles, barrier) so that tests/cuda_host/ can run the very same code on the
// CPU (one std::thread per CUDA thread, a real barrier) where no GPU exists.
// Sync is a __device__ barrier on the GPU and a __host__ one in the
// emulation; each instantiation is only ever called on its own side.
#pragma nv_exec_check_disable
template <int BM, int BN, int BK, int TM, int TN, class L, class S, class Sync>
__host__ __device__ __forceinline__ void igemm_f32_block(
    const L& ld, const S& st, int M, int N, int Kd, int splits, int t, int bx, int by, int bz,
    float (*As)[BK][BM], float (*Bs)[BK][BN], const Sync& sync) {
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int A_PER = BM * BK / NT;  // A elements each thread loads per tile
  constexpr int B_PER = BN * BK / NT;
  constexpr int B_STEP = NT / BN;
  static_assert(BM * BK % NT == 0 && BN * BK % NT == 0, "tile/thread mismatch");
  static_assert(BK % A_PER == 0 && NT % BN == 0, "load mapping");

  const int g = bz / splits, split = bz % splits;
  const int m0 = by * BM, n0 = bx * BN;
  const int tiles = (Kd + BK - 1) / BK;
  const int per = (tiles + splits - 1) / splits;
  const int kt0 = split * per, kt1 = kt0 + per < tiles ? kt0 + per : tiles;
  if (kt0 >= kt1) return;  // whole block leaves together: no barrier skipped

  // Each thread loads A elements of one row (contiguous k) and B elements of
  // one column, so the row/column decomposition happens once per block.
  const int a_m = t / (BK / A_PER), a_k = (t % (BK / A_PER)) * A_PER;
  const int b_n = t % BN, b_k = t / BN;
  const bool a_ok = m0 + a_m < M, b_ok = n0 + b_n < N;
  const typename L::Row row = ld.row(g, a_ok ? m0 + a_m : 0);
  const typename L::Col col = ld.col(g, b_ok ? n0 + b_n : 0);
  float ra[A_PER], rb[B_PER];

  auto load = [&](int kt) {
    const int kb = kt * BK;
#pragma unroll
    for (int i = 0; i < A_PER; ++i) {
      const int k = kb + a_k + i;
      ra[i] = (a_ok && k < Kd) ? ld.a(row, k) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < B_PER; ++j) {
      const int k = kb + b_k + j * B_STEP;
      rb[j] = (b_ok && k < Kd) ? ld.b(col, k) : 0.f;
    }
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int i = 0; i < A_PER; ++i) As[buf][a_k + i][a_m] = ra[i];
#pragma unroll
    for (int j = 0; j < B_PER; ++j) Bs[buf][b_k + j * B_STEP][b_n] = rb[j];
  };

  const int tx = t % (BN / TN), ty = t / (BN / TN);
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  load(kt0);
  stash(0);
  sync();
  int buf = 0;
  for (int kt = kt0; kt < kt1; ++kt) {
    const bool more = kt + 1 < kt1;
    if (more) load(kt + 1);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float fa[TM], fb[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) fa[i] = As[buf][kk][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) fb[j] = Bs[buf][kk][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
    }
    // The other buffer was last read in the previous iteration, which ended
    // with a barrier, so it is free to overwrite.
    if (more) stash(buf ^ 1);
    sync();
    buf ^= 1;
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + ty * TM + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx * TN + j;
      if (n < N) st(g, m, n, acc[i][j]);
    }
  }
}

struct DeviceSync {
  __device__ void operator()() const { __syncthreads(); }
};

template <int BM, int BN, int BK, int TM, int TN, class L, class S>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    igemm_f32_kernel(const L ld, const S st, int M, int N, int Kd, int splits) {
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];
  igemm_f32_block<BM, BN, BK, TM, TN>(ld, st, M, N, Kd, splits, threadIdx.x, blockIdx.x,
                                      blockIdx.y, blockIdx.z, As, Bs, DeviceSync{});
}

// --- TF32 tensor-core kernel (sm_80+): 128x128x16 block tile, 8 warps as
// 2x4, each warp 64x32 = 4x2 wmma 16x16x8 fragments, FP32 accumulation.
// Operands are rounded to TF32 (10-bit mantissa) when fragments load.
// The block body takes the fragment operations as a policy (Ops): WmmaOps
// on the GPU; tests/cuda_host/ substitutes plain 16x16 matrices to check the
// tiling on the CPU. The kernel has an empty body below sm_80 and the host
// never launches it there.
constexpr int kTcBM = 128, kTcBN = 128, kTcBK = 16, kTcThreads = 256;
constexpr int kTcLDA = kTcBK + 8;   // row-major A tile [BM][LDA]; keeps 32-byte alignment
constexpr int kTcLDB = kTcBN + 8;   // row-major B tile [BK][LDB]
constexpr int kTcSmemFloats = 2 * kTcBM * kTcLDA + 2 * kTcBK * kTcLDB;

#pragma nv_exec_check_disable
template <class L, class S, class Ops>
__host__ __device__ __forceinline__ void igemm_tf32_block(const L& ld, const S& st, int M, int N,
                                                          int Kd, int t, int bx, int by, int bz,
                                                          float* smem, const Ops& ops) {
  constexpr int BM = kTcBM, BN = kTcBN, BK = kTcBK, NT = kTcThreads;
  constexpr int LDA = kTcLDA, LDB = kTcLDB;
  constexpr int A_PER = BM * BK / NT;  // 8
  constexpr int B_PER = BN * BK / NT;  // 8
  constexpr int B_STEP = NT / BN;      // 2
  float* As = smem;                 // [2][BM][LDA]
  float* Bs = smem + 2 * BM * LDA;  // [2][BK][LDB]

  const int warp = t / 32, lane = t % 32;
  const int g = bz;
  const int m0 = by * BM, n0 = bx * BN;
  const int tiles = (Kd + BK - 1) / BK;

  const int a_m = t / (BK / A_PER), a_k = (t % (BK / A_PER)) * A_PER;
  const int b_n = t % BN, b_k = t / BN;
  const bool a_ok = m0 + a_m < M, b_ok = n0 + b_n < N;
  const typename L::Row row = ld.row(g, a_ok ? m0 + a_m : 0);
  const typename L::Col col = ld.col(g, b_ok ? n0 + b_n : 0);
  float ra[A_PER], rb[B_PER];
  auto load = [&](int kt) {
    const int kb = kt * BK;
#pragma unroll
    for (int i = 0; i < A_PER; ++i) {
      const int k = kb + a_k + i;
      ra[i] = (a_ok && k < Kd) ? ld.a(row, k) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < B_PER; ++j) {
      const int k = kb + b_k + j * B_STEP;
      rb[j] = (b_ok && k < Kd) ? ld.b(col, k) : 0.f;
    }
  };
  auto stash = [&](int buf) {
    float* a = As + buf * BM * LDA;
    float* b = Bs + buf * BK * LDB;
#pragma unroll
    for (int i = 0; i < A_PER; ++i) a[a_m * LDA + a_k + i] = ra[i];
#pragma unroll
    for (int j = 0; j < B_PER; ++j) b[(b_k + j * B_STEP) * LDB + b_n] = rb[j];
  };

  const int wm = warp / 4, wn = warp % 4;  // warp tile origin: (wm*64, wn*32)
  typename Ops::FragC acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) ops.zero(acc[i][j]);

  load(0);
  stash(0);
  ops.sync();
  int buf = 0;
  for (int kt = 0; kt < tiles; ++kt) {
    const bool more = kt + 1 < tiles;
    if (more) load(kt + 1);
    const float* a = As + buf * BM * LDA;
    const float* b = Bs + buf * BK * LDB;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      typename Ops::FragA fa[4];
      typename Ops::FragB fb[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) ops.load_a(fa[i], a + (wm * 64 + i * 16) * LDA + kk, LDA);
#pragma unroll
      for (int j = 0; j < 2; ++j) ops.load_b(fb[j], b + kk * LDB + wn * 32 + j * 16, LDB);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) ops.mma(acc[i][j], fa[i], fb[j]);
    }
    // As in the FP32 kernel: the other buffer's last readers passed the
    // barrier that ended the previous iteration.
    if (more) stash(buf ^ 1);
    ops.sync();
    buf ^= 1;
  }

  // Epilogue: each warp spills one 16x16 fragment at a time to its own
  // scratch (reusing the A tiles: the loop ended with a barrier), then
  // applies the Store element by element with bounds checks.
  float* scratch = smem + warp * 256;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      ops.store(scratch, acc[i][j], 16);
      ops.syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int m = m0 + wm * 64 + i * 16 + e / 16;
        const int n = n0 + wn * 32 + j * 16 + e % 16;
        if (m < M && n < N) st(g, m, n, scratch[e]);
      }
      ops.syncwarp();
    }
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
struct WmmaOps {
  using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8,
                                       nvcuda::wmma::precision::tf32, nvcuda::wmma::row_major>;
  using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8,
                                       nvcuda::wmma::precision::tf32, nvcuda::wmma::row_major>;
  using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;
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

template <class L, class S>
__global__ void __launch_bounds__(kTcThreads)
    igemm_tf32_kernel(const L ld, const S st, int M, int N, int Kd) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(128) float smem[kTcSmemFloats];
  igemm_tf32_block(ld, st, M, N, Kd, threadIdx.x, blockIdx.x, blockIdx.y, blockIdx.z, smem,
                   WmmaOps{});
#endif
}

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
