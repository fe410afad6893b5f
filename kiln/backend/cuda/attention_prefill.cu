// Tensor-core prefill attention for float16 / bfloat16 with head_dim == head_dim_v in {64, 128}.
//
// A block of 4 warps takes 64 query rows of one (batch, head), 16 rows per warp. 64-key tiles of K
// and V are staged in shared memory with cp.async, double-buffered (tile t + 1 loads while tile t
// is computed). S = Q K^T and O += P V run on mma.sync m16n8k16 with float32 accumulators, operands
// loaded with ldmatrix; the online softmax (running max and sum per row, base 2) stays in
// registers. Causal tiles past the block's last query are skipped; only tiles that cross the
// diagonal or the end of the keys are masked per element. Everything else (float32, masks, other
// head sizes, strided features, pre-Ampere GPUs) is left to the SIMT kernel in attention.cu.
//
// Fragment layouts: kiln/backend/cuda/mma.cuh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kiln/backend/cuda/attention.cuh"
#include "kiln/backend/cuda/mma.cuh"

namespace kiln::cuda {

namespace {

constexpr int kRows = 64;  // query rows per block, and keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
// Shared-memory rows are D + 8 elements apart: the 8 row addresses of an ldmatrix then fall 16
// bytes apart modulo 128 and hit distinct banks.
constexpr int kPad = 8;

template <int D>
constexpr int tile_elems() {
  return kRows * (D + kPad);
}
// Q, two K tiles and two V tiles.
template <int D>
constexpr size_t mma_smem_bytes() {
  return 5 * static_cast<size_t>(tile_elems<D>()) * 2;
}

// Rows row0 .. row0 + 63 of a (rows, D) matrix with row stride rs (unit feature stride, 16-byte
// aligned rows) into a shared tile, zeros past nrows. Called by the whole block; asynchronous.
template <class T, int D>
__device__ __forceinline__ void load_tile_async(T* dst, const T* src, int64_t rs, int row0, int nrows) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  static_assert(kRows * kChunks % kThreads == 0);
#pragma unroll
  for (int k = 0; k < kRows * kChunks / kThreads; ++k) {
    const int idx = threadIdx.x + k * kThreads;
    const int r = idx / kChunks, c = (idx % kChunks) * 8;
    const bool ok = row0 + r < nrows;
    const T* s = ok ? src + static_cast<int64_t>(row0 + r) * rs + c : src;
    cp_async16(smem_addr(dst + r * (D + kPad) + c), s, ok);
  }
}

// Grid (B * Hq, query tiles); the query tile index is reversed so that the longest causal tiles
// are scheduled first, with all heads of one tile next to each other.
template <class T, int D>
__global__ void __launch_bounds__(kThreads) prefill_mma_kernel(AttnParams<T> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int LD = D + kPad;
  constexpr int kTileElems = tile_elems<D>();
  constexpr int KS = D / 16;  // 16-wide k steps of Q K^T
  constexpr int NO = D / 8;   // 8-wide output column tiles
  constexpr int NS = kRows / 8;  // 8-key score tiles
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* Ks = Qs + kTileElems;      // two buffers
  T* Vs = Ks + 2 * kTileElems;  // two buffers

  const int b = blockIdx.x / p.Hq, h = blockIdx.x % p.Hq, hk = h / p.group;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int qw = q0 + warp * 16;  // the warp's first query row

  const T* qbase = p.q + b * p.qs[0] + h * p.qs[1];
  const T* kbase = p.k + b * p.ks[0] + hk * p.ks[1];
  const T* vbase = p.v + b * p.vs[0] + hk * p.vs[1];

  // Causal: query i sits at key position off + i; the block's last query bounds the keys read.
  const int off = p.Lk - p.Lq;
  const int kend = p.causal ? min(p.Lk, off + min(q0 + kRows, p.Lq)) : p.Lk;
  const int ntiles = (kend + kRows - 1) / kRows;

  load_tile_async<T, D>(Qs, qbase, p.qs[2], q0, p.Lq);
  load_tile_async<T, D>(Ks, kbase, p.ks[2], 0, p.Lk);
  load_tile_async<T, D>(Vs, vbase, p.vs[2], 0, p.Lk);
  cp_async_commit();

  uint32_t qf[KS][4];  // the warp's 16 query rows as A fragments
  float o[NO][4];      // unnormalized output, C layout
#pragma unroll
  for (int n = 0; n < NO; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  // Per thread: rows g and g + 8 of the warp. m in units of log2 (scores times scale * log2 e);
  // l is this thread's share of the row sum, reduced over the quad at the end.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const float sl2 = p.scale * kLog2e;

  for (int it = 0; it < ntiles; ++it) {
    const int buf = it & 1, j0 = it * kRows;
    if (it + 1 < ntiles) {  // the other buffer was released by the barrier ending the last iteration
      load_tile_async<T, D>(Ks + (buf ^ 1) * kTileElems, kbase, p.ks[2], j0 + kRows, p.Lk);
      load_tile_async<T, D>(Vs + (buf ^ 1) * kTileElems, vbase, p.vs[2], j0 + kRows, p.Lk);
      cp_async_commit();
      cp_async_wait<1>();  // all but the group just issued: tile it (and Q) have landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (it == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        ldsm_x4(smem_addr(Qs + (warp * 16 + (lane & 15)) * LD + ks * 16 + (lane >> 4) * 8), qf[ks]);
      }
    }
    // Warp-uniform: skip when the warp's rows are all padding, or (causal) all its rows precede
    // the tile's first key.
    const bool live = qw < p.Lq && !(p.causal && j0 > off + qw + 15);
    if (live) {
      const T* Kb = Ks + buf * kTileElems;
      const T* Vb = Vs + buf * kTileElems;
      const int mi = lane >> 3, mr = lane & 7;  // which 8x8 matrix this lane addresses, and its row

      // S = Q K^T: K rows (keys) are the n index, so K in shared memory is B in "col" layout.
      // Matrix mi: key tile 2 * np + (mi >> 1), k half mi & 1 -> regs b0, b1 of two key tiles.
      float s[NS][4];
#pragma unroll
      for (int n = 0; n < NS; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
#pragma unroll
        for (int np = 0; np < NS / 2; ++np) {
          uint32_t kf[4];
          ldsm_x4(smem_addr(Kb + (np * 16 + (mi >> 1) * 8 + mr) * LD + ks * 16 + (mi & 1) * 8), kf);
          mma16816<T>(s[2 * np], qf[ks], kf[0], kf[1]);
          mma16816<T>(s[2 * np + 1], qf[ks], kf[2], kf[3]);
        }
      }

      // Scale first (the scale's sign is not assumed), then mask unseen keys to -inf.
#pragma unroll
      for (int n = 0; n < NS; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] *= sl2;
      }
      if (j0 + kRows > p.Lk || (p.causal && j0 + kRows - 1 > off + qw)) {
#pragma unroll
        for (int n = 0; n < NS; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int i = qw + g + (e >> 1) * 8, j = j0 + n * 8 + 2 * t + (e & 1);
            if (j >= p.Lk || (p.causal && j > off + i)) s[n][e] = -INFINITY;
          }
        }
      }

      // Online softmax; a quad (lanes 4g .. 4g+3) holds a row, so its max is reduced over the quad.
      float mx[2] = {m[0], m[1]};
#pragma unroll
      for (int n = 0; n < NS; ++n) {
        mx[0] = fmaxf(mx[0], fmaxf(s[n][0], s[n][1]));
        mx[1] = fmaxf(mx[1], fmaxf(s[n][2], s[n][3]));
      }
      float base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        base[r] = mx[r] == -INFINITY ? 0.f : mx[r];  // no key seen yet: avoid -inf - -inf
        const float alpha = exp2f(m[r] - base[r]);  // 0 when m was -inf
        m[r] = mx[r];
        l[r] *= alpha;
#pragma unroll
        for (int n = 0; n < NO; ++n) {
          o[n][2 * r] *= alpha;
          o[n][2 * r + 1] *= alpha;
        }
      }
#pragma unroll
      for (int n = 0; n < NS; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[n][e] = exp2f(s[n][e] - base[e >> 1]);  // -inf -> 0
          l[e >> 1] += s[n][e];
        }
      }

      // O += P V. P's C fragments of key tiles 2kk, 2kk+1 are exactly the A fragment of the 16-key
      // step kk. V rows (keys) are the k index: B comes from V with ldmatrix .trans; matrix mi is
      // keys 16kk + (mi & 1) * 8, output tile 2 * np + (mi >> 1) -> b0, b1 of two output tiles.
#pragma unroll
      for (int kk = 0; kk < NS / 2; ++kk) {
        const uint32_t pa[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                                pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int np = 0; np < NO / 2; ++np) {
          uint32_t vf[4];
          ldsm_x4_trans(smem_addr(Vb + (kk * 16 + (mi & 1) * 8 + mr) * LD + np * 16 + (mi >> 1) * 8), vf);
          mma16816<T>(o[2 * np], pa, vf[0], vf[1]);
          mma16816<T>(o[2 * np + 1], pa, vf[2], vf[3]);
        }
      }
    }
    __syncthreads();  // buffer `buf` is free for the load issued by the next iteration
  }

  if (qw >= p.Lq) return;  // warp-uniform; no block barrier follows
  // Normalize, stage the warp's 16 rows in its own rows of Qs (only this warp read them, into qf),
  // then store whole 16-byte pieces of each output row.
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;  // a row that saw no key gives zeros
  }
  T* stage = Qs + warp * 16 * LD;
#pragma unroll
  for (int n = 0; n < NO; ++n) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      *reinterpret_cast<uint32_t*>(stage + (g + 8 * r) * LD + n * 8 + 2 * t) =
          pack2<T>(o[n][2 * r] * inv[r], o[n][2 * r + 1] * inv[r]);
    }
  }
  __syncwarp();
  constexpr int kChunks = D / 8;
  T* obase = p.out + (static_cast<int64_t>(b) * p.Hq + h) * p.Lq * D;
  static_assert(16 * kChunks % 32 == 0);
#pragma unroll
  for (int k = 0; k < 16 * kChunks / 32; ++k) {
    const int idx = lane + 32 * k;
    const int r = idx / kChunks, c = (idx % kChunks) * 8, i = qw + r;
    if (i < p.Lq) {
      *reinterpret_cast<uint4*>(obase + static_cast<int64_t>(i) * D + c) =
          *reinterpret_cast<const uint4*>(stage + r * LD + c);
    }
  }
#else
  __trap();  // needs sm_80 or newer; the host side never launches it elsewhere
#endif
}

template <class T, int D>
void launch_mma_with(const AttnParams<T>& p, const array& out, unsigned bh, unsigned qtiles) {
  constexpr size_t smem = mma_smem_bytes<D>();
  cudaStream_t st = stream_of(out);  // also makes the device current for the attribute below
  check(cudaFuncSetAttribute(prefill_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem)),
        "scaled_dot_product_attention: shared memory size");
  prefill_mma_kernel<T, D><<<dim3(bh, qtiles), kThreads, smem, st>>>(p);
  check_launch("scaled_dot_product_attention");
}

}  // namespace

template <class T>
bool launch_prefill_mma(const AttnParams<T>& p, const array& out) {
  if constexpr (!std::is_same_v<T, float16_t> && !std::is_same_v<T, bfloat16_t>) {
    return false;
  } else {
    if (p.mask_kind != kNoMask || p.D != p.Dv || (p.D != 64 && p.D != 128)) return false;
    if (!p.vec_k || !p.vec_v || !q_vec_ok(p) || !aligned16(p.out)) return false;
    if (p.Lq <= 0 || p.Lk <= 0 || (p.causal && p.Lq > p.Lk)) return false;
    const int dev = out.device().index;
    const cudaDeviceProp& props = device_props(dev);
    if (props.major < 8) return false;  // mma.sync with bfloat16, cp.async: sm_80+
    const int64_t bh = static_cast<int64_t>(p.B) * p.Hq;
    const int64_t qtiles = (p.Lq + kRows - 1) / kRows;
    if (bh > 0x7fffffff || qtiles > 65535) return false;
    const size_t smem = p.D == 64 ? mma_smem_bytes<64>() : mma_smem_bytes<128>();
    if (smem > props.sharedMemPerBlockOptin) return false;
    if (p.D == 64) {
      launch_mma_with<T, 64>(p, out, static_cast<unsigned>(bh), static_cast<unsigned>(qtiles));
    } else {
      launch_mma_with<T, 128>(p, out, static_cast<unsigned>(bh), static_cast<unsigned>(qtiles));
    }
    return true;
  }
}

template bool launch_prefill_mma<float>(const AttnParams<float>&, const array&);
template bool launch_prefill_mma<float16_t>(const AttnParams<float16_t>&, const array&);
template bool launch_prefill_mma<bfloat16_t>(const AttnParams<bfloat16_t>&, const array&);

}  // namespace kiln::cuda
