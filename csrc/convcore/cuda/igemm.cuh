// Implicit-GEMM kernels (internal). A problem is G independent GEMMs
//   C[g] (M x N) = A[g] (M x Kd) * B[g] (Kd x N)
// whose operands are never materialised: a Loader produces A and B elements
// from the tensors (im2col on the fly), a Store consumes each C element (the
// conv epilogue, a scatter, an atomic add). One kernel body thus serves conv
// forward, backward-data and backward-weight.
//
// Loader interface (all __host__ __device__, indices in 32 bits; the host
// checks M, N, Kd < 2^31):
//   struct Row; Row row(int g, int m) const;   // per-thread, once per block
//   float a(const Row&, int k) const;          // A[g][m][k]
//   struct Col; Col col(int g, int n, const int2* table) const;
//   float b(const Col&, int k) const;          // B[g][k][n]
//   static constexpr bool kVecA;  // A rows contiguous in k: with vec_a >= V,
//     float2/float4 a_vec<V>(row, k) loads V elements (k a multiple of V)
//   int vec_a;                    // (kVecA loaders) 1, 2 or 4, set by the host
//   static constexpr bool kTable; // per-block k table in shared memory:
//     void fill_table(int2* table, int t, int nt, int Kd) const
// Store: S at_split(int split) const;               // this split's store
//        void operator()(int g, int m, int n, float v) const;
//
// Grid: x = ceil(N/BN), y = ceil(M/BM), z = G * splits. With splits > 1
// each block reduces only its slice of Kd (split-K) and writes it through
// at_split(split): the conv stores then write per-split workspaces that a
// second kernel sums in a fixed order (results do not depend on timing).
#pragma once
#include <cuda_runtime.h>

namespace convcore {
namespace cuda {
namespace detail {

// One thread's share of loading a BMxBK tile of A and a BKxBN tile of B into
// registers (the global loads of tile k+1 overlap the math on tile k).
// Each thread loads A elements of one row (contiguous k: vector loads where
// the loader allows) and B elements of one column, so the row and column
// decompositions happen once per block.
template <int BM, int BN, int BK, int NT, class L>
struct TileLoads {
  static constexpr int A_PER = BM * BK / NT;  // A elements per thread per tile
  static constexpr int B_PER = BN * BK / NT;
  static constexpr int B_STEP = NT / BN;
  static constexpr int AV = A_PER % 4 == 0 ? 4 : A_PER % 2 == 0 ? 2 : 1;
  static_assert(BM * BK % NT == 0 && BN * BK % NT == 0, "tile/thread mismatch");
  static_assert(BK % A_PER == 0 && NT % BN == 0, "load mapping");

  int a_m, a_k, b_n, b_k;
  bool a_ok, b_ok, vec;
  typename L::Row row;
  typename L::Col col;
  float ra[A_PER], rb[B_PER];

  __host__ __device__ TileLoads(const L& ld, int g, int m0, int n0, int M, int N, int t,
                                const int2* table) {
    a_m = t / (BK / A_PER);
    a_k = (t % (BK / A_PER)) * A_PER;
    b_n = t % BN;
    b_k = t / BN;
    a_ok = m0 + a_m < M;
    b_ok = n0 + b_n < N;
    row = ld.row(g, a_ok ? m0 + a_m : 0);
    col = ld.col(g, b_ok ? n0 + b_n : 0, table);
    vec = false;
    if constexpr (L::kVecA && AV > 1) vec = ld.vec_a >= AV;
  }

  __host__ __device__ void load(const L& ld, int kt, int Kd) {
    const int kb = kt * BK;
    if constexpr (L::kVecA && AV > 1) {
      if (vec) {  // Kd is a multiple of AV: a group is wholly inside or outside
#pragma unroll
        for (int v = 0; v < A_PER; v += AV) {
          const int k = kb + a_k + v;
          if (a_ok && k < Kd) {
            ld.template a_vec<AV>(row, k, ra + v);
          } else {
#pragma unroll
            for (int i = 0; i < AV; ++i) ra[v + i] = 0.f;
          }
        }
        load_b(ld, kb, Kd);
        return;
      }
    }
#pragma unroll
    for (int i = 0; i < A_PER; ++i) {
      const int k = kb + a_k + i;
      ra[i] = (a_ok && k < Kd) ? ld.a(row, k) : 0.f;
    }
    load_b(ld, kb, Kd);
  }

  __host__ __device__ void load_b(const L& ld, int kb, int Kd) {
#pragma unroll
    for (int j = 0; j < B_PER; ++j) {
      const int k = kb + b_k + j * B_STEP;
      rb[j] = (b_ok && k < Kd) ? ld.b(col, k) : 0.f;
    }
  }
};

// Splits such that every one gets at least one k-tile (blocks take slices of
// ceil(tiles / splits) tiles; an empty split would leave its workspace slice
// unwritten).
inline long long nonempty_splits(long long ktiles, long long splits) {
  if (splits <= 1 || ktiles <= 1) return 1;
  const long long per = (ktiles + splits - 1) / splits;
  return (ktiles + per - 1) / per;
}

// The TF32 block's barrier as a callable (its Ops policy provides it).
template <class Ops>
struct OpsSync {
  const Ops& ops;
#pragma nv_exec_check_disable
  __host__ __device__ void operator()() const { ops.sync(); }
};

// The block's k table (loaders with kTable), filled before the first tile.
#pragma nv_exec_check_disable
template <class L, class Sync>
__host__ __device__ __forceinline__ void fill_table(const L& ld, int2* table, int t, int nt,
                                                    int Kd, const Sync& sync) {
  if constexpr (L::kTable) {
    ld.fill_table(table, t, nt, Kd);
    sync();
  }
}

// --- FP32 SIMT kernel (the TF32 tensor-core one is in igemm_tf32.cuh): BMxBN block tile, TMxTN register tile per thread,
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
    const L& ld, const S& st0, int M, int N, int Kd, int splits, int t, int bx, int by, int bz,
    float (*As)[BK][BM], float (*Bs)[BK][BN], int2* table, const Sync& sync) {
  constexpr int NT = (BM / TM) * (BN / TN);
  using Loads = TileLoads<BM, BN, BK, NT, L>;
  constexpr int A_PER = Loads::A_PER, B_PER = Loads::B_PER, B_STEP = Loads::B_STEP;

  const int g = bz / splits, split = bz % splits;
  const int m0 = by * BM, n0 = bx * BN;
  const int tiles = (Kd + BK - 1) / BK;
  const int per = (tiles + splits - 1) / splits;
  const int kt0 = split * per, kt1 = kt0 + per < tiles ? kt0 + per : tiles;
  if (kt0 >= kt1) return;  // whole block leaves together: no barrier skipped
  const S st = st0.at_split(split);

  fill_table(ld, table, t, NT, Kd, sync);
  Loads tl(ld, g, m0, n0, M, N, t, table);
  auto load = [&](int kt) { tl.load(ld, kt, Kd); };
  auto stash = [&](int buf) {
#pragma unroll
    for (int i = 0; i < A_PER; ++i) As[buf][tl.a_k + i][tl.a_m] = tl.ra[i];
#pragma unroll
    for (int j = 0; j < B_PER; ++j) Bs[buf][tl.b_k + j * B_STEP][tl.b_n] = tl.rb[j];
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

// Blocks per SM the register budget must allow: without a bound the 128x128
// tile took 135 registers (one block per SM), the 64x64 one 59.
template <int BM, int BN>
constexpr int f32_min_blocks() { return BM * BN >= 16384 ? 2 : BM * BN >= 8192 ? 3 : 4; }

template <int BM, int BN, int BK, int TM, int TN, class L, class S>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), (f32_min_blocks<BM, BN>()))
    igemm_f32_kernel(const L ld, const S st, int M, int N, int Kd, int splits) {
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];
  extern __shared__ int2 table[];  // kTable loaders: Kd entries (dynamic size)
  igemm_f32_block<BM, BN, BK, TM, TN>(ld, st, M, N, Kd, splits, threadIdx.x, blockIdx.x,
                                      blockIdx.y, blockIdx.z, As, Bs, table, DeviceSync{});
}

}  // namespace detail
}  // namespace cuda
}  // namespace convcore
