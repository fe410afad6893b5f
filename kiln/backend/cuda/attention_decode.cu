// Tensor-core decode attention (split over the keys, "flash-decoding") for float16 / bfloat16 with
// head_dim == head_dim_v in {64, 128}, no mask (causal allowed). Everything else goes to the SIMT
// decode kernel in attention.cu.
//
// Grid (splits, B * Hkv, row groups). Block (split, (b, hk), z) takes 16 query rows of kv head
// hk's group, row rr = 16 z + r standing for head hk * group + rr / Lq and query rr % Lq (so K and
// V are read once for the whole group, and rows past the group are zeros), against keys
// [split * chunk, + chunk) in 64-key tiles. Q and the first two tiles of K and V are requested at
// once with cp.async; tile t + 2 is requested as tile t is released. Warp w takes keys 16 w ..
// 16 w + 15 of every tile: S = Q K^T and O += P V on mma.sync, with its own online softmax (base
// 2); the four warps merge at the end. A single split writes the output; several write float32
// partials (unnormalized output, max, sum) that decode_merge_kernel combines. The merge is a
// programmatic dependent launch on sm_90, so its launch overlaps the partial kernel's tail.
//
// Fragment layouts: kiln/backend/cuda/mma.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#include "kiln/backend/cuda/attention.cuh"
#include "kiln/backend/cuda/mma.cuh"
#include "kiln/memory.h"

namespace kiln::cuda {

namespace {

constexpr int kKeys = 64;   // keys per tile, 16 per warp
constexpr int kQRows = 16;  // query rows per block: one mma A tile
constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kPad = 8;  // row padding in shared memory: conflict-free ldmatrix (as the prefill kernel)
constexpr int kMaxSplits = 1024;
constexpr int kOneWaveTiles = 4;  // see launch_decode_with
constexpr int kMergeThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;

template <int D>
constexpr int row_ld() {
  return D + kPad;
}
// Row stride of the float32 outputs the warps stage for their merge: 8 floats of padding put
// the 4 rows of a half-warp's 8-byte stores in different banks (unpadded: 4-way conflicts).
template <int D>
constexpr int stage_ld() {
  return D + 8;
}

// Q, then two stages of a K and a V tile. The merge at the end reuses the tiles: per warp 16
// rows of D float32 outputs, then a max and a sum per row.
template <int D>
constexpr size_t decode_smem_bytes() {
  return sizeof(uint16_t) * (static_cast<size_t>(kQRows) + 4 * kKeys) * row_ld<D>();
}
template <int D>
constexpr bool merge_fits() {
  return sizeof(float) * kWarps * kQRows * (stage_ld<D>() + 2) <= sizeof(uint16_t) * 4 * kKeys * row_ld<D>();
}
static_assert(merge_fits<64>() && merge_fits<128>());
// out[0 .. 3] = x * scale in T: a merge thread's four features of one output row.
template <class T>
__device__ __forceinline__ void store_scaled4(T* out, float4 x, float scale) {
  out[0] = convert<T>(x.x * scale);
  out[1] = convert<T>(x.y * scale);
  out[2] = convert<T>(x.z * scale);
  out[3] = convert<T>(x.w * scale);
}

// (m, l, o) += (ms, ls, x): two online-softmax partials (base-2 max, sum, unnormalized output)
// as one; a partial that saw no key has m = -inf and adds nothing.
__device__ __forceinline__ void merge_partial(float& m, float& l, float4& o, float ms, float ls, float4 x) {
  const float mn = fmaxf(m, ms);
  const float a = m == -INFINITY ? 0.f : exp2f(m - mn);
  const float b = ms == -INFINITY ? 0.f : exp2f(ms - mn);
  m = mn;
  l = l * a + ls * b;
  o.x = o.x * a + x.x * b;
  o.y = o.y * a + x.y * b;
  o.z = o.z * a + x.z * b;
  o.w = o.w * a + x.w * b;
}

// Folds partials s = first, first + step, ... < splits of one output row (features 4 lane ..
// 4 lane + 3) into (m, l, o). Loads go out in batches ahead of the arithmetic: they come from
// L2, and one load waited for per split would put a round trip per split on the critical path.
__device__ __forceinline__ void fold_partials(float& m, float& l, float4& o, const float* part_o,
                                              const float* part_ml, int64_t rows, int64_t row, int D, int lane,
                                              int first, int step, int splits) {
  constexpr int kBatch = 8;
  for (int s0 = first; s0 < splits; s0 += kBatch * step) {
    float4 x[kBatch];
    float2 ml[kBatch];
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const int s = s0 + i * step;
      if (s < splits) {
        const int64_t pr = s * rows + row;
        ml[i] = __ldcg(reinterpret_cast<const float2*>(part_ml) + pr);
        x[i] = __ldcg(reinterpret_cast<const float4*>(part_o + pr * D) + lane);
      }
    }
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      if (s0 + i * step < splits) merge_partial(m, l, o, ml[i].x, ml[i].y, x[i]);
    }
  }
}

template <class T, int D>
__global__ void __launch_bounds__(kThreads)
    decode_mma_kernel(AttnParams<T> p, int chunk, float* __restrict__ part_o, float* __restrict__ part_ml) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Lets the merge kernel's blocks be placed now rather than as this grid drains; they still
  // wait for this grid to finish and its writes to land (cudaGridDependencySynchronize). On an
  // H200, 2-4% faster than the implicit trigger at the end.
  cudaTriggerProgrammaticLaunchCompletion();
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int LD = row_ld<D>();
  constexpr int KS = D / 16;     // 16-wide k steps of Q K^T
  constexpr int NO = D / 8;      // 8-wide output column tiles
  constexpr int QC = D / 8;      // 16-byte pieces per row
  constexpr int kTile = kKeys * LD;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Qs = reinterpret_cast<T*>(smem_raw);
  T* tiles = Qs + kQRows * LD;  // stage s: K at tiles + 2 s kTile, V right after

  const int split = blockIdx.x, bh = blockIdx.y, z = blockIdx.z;
  const int b = bh / p.Hkv, hk = bh % p.Hkv;
  const int row0 = z * kQRows;
  const int nrows = min(kQRows, p.group * p.Lq - row0);
  const int j_begin = split * chunk, j_end = min(p.Lk, j_begin + chunk);
  const int ntiles = (j_end - j_begin + kKeys - 1) / kKeys;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const T* kbase = p.k + b * p.ks[0] + hk * p.ks[1];
  const T* vbase = p.v + b * p.vs[0] + hk * p.vs[1];

  for (int idx = threadIdx.x; idx < kQRows * QC; idx += kThreads) {
    const int r = idx / QC, c = (idx % QC) * 8, rr = row0 + r;
    const bool ok = r < nrows;
    const T* src = ok ? p.q + b * p.qs[0] + (hk * p.group + rr / p.Lq) * p.qs[1] + (rr % p.Lq) * p.qs[2] + c : p.q;
    cp_async16(smem_addr(Qs + r * LD + c), src, ok);
  }
  auto load_tile = [&](int tile, int stage) {
    T* kd = tiles + 2 * stage * kTile;
    T* vd = kd + kTile;
    const int j0 = j_begin + tile * kKeys;
#pragma unroll
    for (int k = 0; k < kKeys * QC / kThreads; ++k) {
      const int idx = threadIdx.x + k * kThreads;
      const int r = idx / QC, c = (idx % QC) * 8, j = j0 + r;
      const bool ok = j < j_end;
      cp_async16(smem_addr(kd + r * LD + c), ok ? kbase + static_cast<int64_t>(j) * p.ks[2] + c : kbase, ok);
      cp_async16(smem_addr(vd + r * LD + c), ok ? vbase + static_cast<int64_t>(j) * p.vs[2] + c : vbase, ok);
    }
  };
  load_tile(0, 0);
  cp_async_commit();  // group 0: Q and tile 0
  if (ntiles > 1) load_tile(1, 1);
  cp_async_commit();  // group 1: tile 1 (maybe empty); iteration i commits group i + 2

  uint32_t qf[KS][4];
  float o[NO][4];
#pragma unroll
  for (int n = 0; n < NO; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // rows g and g + 8; m in log2 units
  const float sl2 = p.scale * kLog2e;
  const int causal_off = p.Lk - p.Lq;
  // The query index of this thread's rows g and g + 8, for the causal bound.
  const int qi[2] = {(row0 + g) % p.Lq, (row0 + g + 8) % p.Lq};
  const int mi = lane >> 3, mr = lane & 7;  // which 8x8 matrix this lane addresses, and its row

  for (int it = 0; it < ntiles; ++it) {
    const int stage = it & 1;
    cp_async_wait<1>();  // every group but the newest: tile it (and Q) have landed
    __syncthreads();
    if (it == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        ldsm_x4(smem_addr(Qs + (lane & 15) * LD + ks * 16 + (lane >> 4) * 8), qf[ks]);
      }
    }
    const T* Kb = tiles + 2 * stage * kTile;
    const T* Vb = Kb + kTile;
    const int j0 = j_begin + it * kKeys + warp * 16;
    if (j0 < j_end) {  // warp-uniform: the last tile may end before this warp's keys
      float s[2][4] = {};
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        uint32_t kf[4];
        ldsm_x4(smem_addr(Kb + (warp * 16 + (mi >> 1) * 8 + mr) * LD + ks * 16 + (mi & 1) * 8), kf);
        mma16816<T>(s[0], qf[ks], kf[0], kf[1]);
        mma16816<T>(s[1], qf[ks], kf[2], kf[3]);
      }
#pragma unroll
      for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = j0 + n * 8 + 2 * t + (e & 1);
          s[n][e] *= sl2;
          if (j >= j_end || (p.causal && j > causal_off + qi[e >> 1])) s[n][e] = -INFINITY;
        }
      }
      float mx[2] = {fmaxf(m[0], fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1]))),
                     fmaxf(m[1], fmaxf(fmaxf(s[0][2], s[0][3]), fmaxf(s[1][2], s[1][3])))};
      float base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        base[r] = mx[r] == -INFINITY ? 0.f : mx[r];  // nothing seen yet: avoid -inf - -inf
        const float alpha = exp2f(m[r] - base[r]);  // 0 while m is -inf
        m[r] = mx[r];
        l[r] *= alpha;
#pragma unroll
        for (int n = 0; n < NO; ++n) {
          o[n][2 * r] *= alpha;
          o[n][2 * r + 1] *= alpha;
        }
      }
#pragma unroll
      for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[n][e] = exp2f(s[n][e] - base[e >> 1]);  // -inf -> 0
          l[e >> 1] += s[n][e];
        }
      }
      // P's two C fragments are the A fragment of one 16-key step; V via ldmatrix .trans.
      const uint32_t pa[4] = {pack2<T>(s[0][0], s[0][1]), pack2<T>(s[0][2], s[0][3]), pack2<T>(s[1][0], s[1][1]),
                              pack2<T>(s[1][2], s[1][3])};
#pragma unroll
      for (int np = 0; np < NO / 2; ++np) {
        uint32_t vf[4];
        ldsm_x4_trans(smem_addr(Vb + (warp * 16 + (mi & 1) * 8 + mr) * LD + np * 16 + (mi >> 1) * 8), vf);
        mma16816<T>(o[2 * np], pa, vf[0], vf[1]);
        mma16816<T>(o[2 * np + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // stage `stage` is free
    if (it + 2 < ntiles) load_tile(it + 2, stage);
    cp_async_commit();
  }
  cp_async_wait<0>();
  __syncthreads();  // every thread's copies have landed before the tiles are reused below

  // Merge the warps: each stages its rows' outputs, max and quad-summed sum past Q.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
  // Only the rows that stand for a query are staged: a GQA group of 4 fills 4 of the 16, and
  // staging all 16 (with bank conflicts) cost 0.9 us of GQA's 10.6 on an H200.
  constexpr int WLD = stage_ld<D>();
  float* wo = reinterpret_cast<float*>(tiles);  // (warp, row, WLD)
  float* wm = wo + kWarps * kQRows * WLD;       // (warp, row)
  float* wl = wm + kWarps * kQRows;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (g + 8 * r < nrows) {
#pragma unroll
      for (int n = 0; n < NO; ++n) {
        *reinterpret_cast<float2*>(wo + (warp * kQRows + g + 8 * r) * WLD + n * 8 + 2 * t) =
            make_float2(o[n][2 * r], o[n][2 * r + 1]);
      }
    }
  }
  if (t == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      wm[warp * kQRows + g + 8 * r] = m[r];
      wl[warp * kQRows + g + 8 * r] = l[r];
    }
  }
  __syncthreads();
  // Thread r < 16 turns its row's four (max, sum) into weights: wm becomes each warp's factor,
  // wl[0 .. 15] the row's max and wl[16 .. 31] its sum.
  __shared__ float row_max[kQRows], row_sum[kQRows];
  if (threadIdx.x < kQRows) {
    const int r = threadIdx.x;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, wm[w * kQRows + r]);
    float L = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float mw = wm[w * kQRows + r];
      const float f = mw == -INFINITY ? 0.f : exp2f(mw - M);
      wm[w * kQRows + r] = f;
      L += wl[w * kQRows + r] * f;
    }
    row_max[r] = M;
    row_sum[r] = L;
  }
  __syncthreads();
  const bool single = gridDim.x == 1;
  const int64_t rows_all = static_cast<int64_t>(p.B) * p.Hq * p.Lq;
  for (int idx = threadIdx.x; idx < nrows * D; idx += kThreads) {
    const int r = idx / D, d = idx % D, rr = row0 + r;
    float acc = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) acc += wo[(w * kQRows + r) * WLD + d] * wm[w * kQRows + r];
    const int64_t row = (static_cast<int64_t>(b) * p.Hq + hk * p.group + rr / p.Lq) * p.Lq + rr % p.Lq;
    if (single) {
      const float L = row_sum[r];
      p.out[row * D + d] = convert<T>(L > 0.f ? acc / L : 0.f);  // no key seen: zeros
    } else {
      const int64_t prow = static_cast<int64_t>(split) * rows_all + row;
      part_o[prow * D + d] = acc;
      if (d == 0) {
        part_ml[prow * 2] = row_max[r];
        part_ml[prow * 2 + 1] = row_sum[r];
      }
    }
  }
#else
  __trap();  // needs sm_80 or newer; the host side never launches it elsewhere
#endif
}

// One block per output row: out = sum_s o_s 2^(m_s - M) / sum_s l_s 2^(m_s - M), or zeros when
// no split saw a key, in one round of reads: thread (group, lane) folds 4 features of splits
// group, group + G, ... into a running (max, sum, output) as it reads them, and group 0 then
// folds the groups' results. (Finding the maximum first costs two more dependent rounds: slower
// on an H200. So was merging in the last split block to finish, with no second kernel: 13.7
// against 11.0 us for GQA at 4096 keys, and 37 against 10.2 for MQA; the splits as one
// thread-block cluster merging through distributed shared memory: 12.4 against 10.5; and this
// kernel waiting on per-row arrival counts instead of the whole grid: 11.3 against 11.0. Three
// stages of tiles instead of two: equal for GQA, slower for MHA (23.7 against 23.3) and 32768
// keys (41.3 against 40.7); at least two tiles a split: slower for MQA, 9.8 against 9.5.)
template <class T>
__global__ void __launch_bounds__(kMergeThreads)
    decode_merge_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml, T* __restrict__ out,
                        int64_t rows, int D, int splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cudaGridDependencySynchronize();  // the partials are written (programmatic dependent launch)
#endif
  __shared__ float4 group_o[kMergeThreads];
  __shared__ float2 group_ml[kMergeThreads];
  const int64_t row = blockIdx.x;
  const int lanes = D / 4, groups = kMergeThreads / lanes;
  const int lane = threadIdx.x % lanes, grp = threadIdx.x / lanes;
  float m = -INFINITY, l = 0.f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (grp < groups) fold_partials(m, l, acc, part_o, part_ml, rows, row, D, lane, grp, groups, splits);
  group_o[threadIdx.x] = acc;
  group_ml[threadIdx.x] = make_float2(m, l);
  __syncthreads();
  if (grp == 0) {
    for (int gg = 1; gg < groups; ++gg) {
      const float2 ml = group_ml[gg * lanes + lane];
      merge_partial(m, l, acc, ml.x, ml.y, group_o[gg * lanes + lane]);
    }
    const float inv = l > 0.f ? 1.f / l : 0.f;
    store_scaled4(out + row * D + lane * 4, acc, inv);
  }
}

// Scratch for the partials, one per (device, stream), kept for the process: an allocation per
// call would add an allocation and a free node to every captured decode step. Kernels on one
// stream run in order, so they share it. A larger need gets a new block outside a capture (the
// old one stays: queued work or a captured graph may still use it); during one, nullptr.
float* partials_scratch(size_t bytes, int dev, int stream, cudaStream_t st) {
  struct Block {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  static std::mutex mutex;
  static std::map<std::pair<int, int>, Block> blocks;
  std::lock_guard<std::mutex> lock(mutex);
  Block& b = blocks[{dev, stream}];
  if (b.bytes >= bytes) return static_cast<float*>(b.ptr);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(st, &capture), "cudaStreamIsCapturing");
  if (capture != cudaStreamCaptureStatusNone) return nullptr;
  b.bytes = std::max(bytes, 2 * b.bytes);
  b.ptr = allocator::gpu_malloc(b.bytes, dev, stream);
  return static_cast<float*>(b.ptr);
}

template <class T, int D>
void launch_decode_with(const AttnParams<T>& p, const array& out) {
  constexpr size_t smem = decode_smem_bytes<D>();
  const int dev = out.device().index;
  const cudaDeviceProp& props = device_props(dev);
  cudaStream_t st = stream_of(out);  // also makes the device current for the attribute below
  static std::atomic<uint64_t> attribute_set{0};  // one bit per device: set once, not per launch
  if (dev >= 64 || !(attribute_set.load() >> dev & 1)) {
    check(cudaFuncSetAttribute(decode_mma_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "scaled_dot_product_attention: shared memory size");
    if (dev < 64) attribute_set.fetch_or(uint64_t{1} << dev);
  }
  const int64_t bh = static_cast<int64_t>(p.B) * p.Hkv;
  const int row_groups = (p.group * p.Lq + kQRows - 1) / kQRows;
  const int64_t tiles = (p.Lk + kKeys - 1) / kKeys;
  const int64_t per_split = bh * row_groups;
  // One block per SM at most when that leaves each at most kOneWaveTiles tiles: where bandwidth
  // is not the limit, fewer splits mean fewer partials to stage, write and merge (GQA at 4096
  // keys: 128 blocks of 4 tiles, 9.75 us, against 256 of 2, 10.0), provided they fill 3/4 of
  // the SMs (2100 keys would give 88 blocks of 3). Longer chunks need the second block's loads
  // in flight on each SM.
  // Tiles a split for a wanted number of blocks: at least one, at most kMaxSplits splits.
  auto chunk_for = [&](int64_t blocks) {
    const int64_t want = std::min<int64_t>({std::max<int64_t>(1, blocks / per_split), tiles, kMaxSplits});
    return (tiles + want - 1) / want;
  };
  int64_t chunk_tiles = chunk_for(props.multiProcessorCount);
  const int64_t one_wave_blocks = (tiles + chunk_tiles - 1) / chunk_tiles * per_split;
  if (chunk_tiles > kOneWaveTiles || 4 * one_wave_blocks < 3 * props.multiProcessorCount) {
    // Otherwise about two blocks per SM in all (KILN_DECODE_BLOCKS_PER_SM overrides, for tuning),
    // each at least one tile of keys.
    static const int64_t blocks_per_sm = [] {
      const char* e = std::getenv("KILN_DECODE_BLOCKS_PER_SM");
      const long v = e ? std::strtol(e, nullptr, 10) : 0;
      return v > 0 && v <= 64 ? static_cast<int64_t>(v) : int64_t{2};
    }();
    chunk_tiles = chunk_for(blocks_per_sm * props.multiProcessorCount + per_split - 1);  // rounded up
  }
  const int64_t splits = (tiles + chunk_tiles - 1) / chunk_tiles;
  const int chunk = static_cast<int>(chunk_tiles * kKeys);
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(bh), static_cast<unsigned>(row_groups));
  if (splits == 1) {
    decode_mma_kernel<T, D><<<grid, kThreads, smem, st>>>(p, chunk, nullptr, nullptr);
    check_launch("scaled_dot_product_attention");
    return;
  }
  const int64_t rows = static_cast<int64_t>(p.B) * p.Hq * p.Lq;
  const size_t bytes = sizeof(float) * static_cast<size_t>(splits * rows * (D + 2));
  float* part_o = partials_scratch(bytes, dev, out.stream().index, st);
  std::shared_ptr<Buffer> scratch;  // a capture's first call: freed in stream order after the kernels
  if (!part_o) {
    scratch = std::make_shared<Buffer>(bytes);
    part_o = static_cast<float*>(scratch->write_gpu(dev, out.stream().index));
  }
  float* part_ml = part_o + splits * rows * D;
  decode_mma_kernel<T, D><<<grid, kThreads, smem, st>>>(p, chunk, part_o, part_ml);
  check_launch("scaled_dot_product_attention");

  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(rows));
  config.blockDim = dim3(kMergeThreads);
  config.dynamicSmemBytes = 0;
  config.stream = st;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attr;
  config.numAttrs = props.major >= 9 ? 1 : 0;
  check(cudaLaunchKernelEx(&config, decode_merge_kernel<T>, static_cast<const float*>(part_o),
                           static_cast<const float*>(part_ml), p.out, rows, D, static_cast<int>(splits)),
        "scaled_dot_product_attention: merge launch");
}

}  // namespace

template <class T>
bool launch_decode_mma(const AttnParams<T>& p, const array& out) {
  if constexpr (!std::is_same_v<T, float16_t> && !std::is_same_v<T, bfloat16_t>) {
    return false;
  } else {
    if (p.mask_kind != kNoMask || p.D != p.Dv || (p.D != 64 && p.D != 128)) return false;
    if (!p.vec_k || !p.vec_v || !q_vec_ok(p) || !aligned16(p.out)) return false;
    if (p.Lq <= 0 || p.Lk <= 0 || (p.causal && p.Lq > p.Lk)) return false;
    const cudaDeviceProp& props = device_props(out.device().index);
    if (props.major < 8) return false;  // mma.sync with bfloat16, cp.async: sm_80+
    const int64_t bh = static_cast<int64_t>(p.B) * p.Hkv;
    const int64_t row_groups = (static_cast<int64_t>(p.group) * p.Lq + kQRows - 1) / kQRows;
    const int64_t rows = static_cast<int64_t>(p.B) * p.Hq * p.Lq;
    if (bh > 65535 || row_groups > 65535 || rows > 0x7fffffff) return false;
    if (p.D == 64 ? decode_smem_bytes<64>() > props.sharedMemPerBlockOptin
                  : decode_smem_bytes<128>() > props.sharedMemPerBlockOptin) {
      return false;
    }
    if (p.D == 64) {
      launch_decode_with<T, 64>(p, out);
    } else {
      launch_decode_with<T, 128>(p, out);
    }
    return true;
  }
}

template bool launch_decode_mma<float>(const AttnParams<float>&, const array&);
template bool launch_decode_mma<float16_t>(const AttnParams<float16_t>&, const array&);
template bool launch_decode_mma<bfloat16_t>(const AttnParams<bfloat16_t>&, const array&);

}  // namespace kiln::cuda
