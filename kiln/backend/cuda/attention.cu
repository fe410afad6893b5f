// CUDA kernels of fused attention, softmax(q k^T * scale + mask) v with an online softmax (running
// max, sum and output in float32), so the score matrix never exists. Inputs are read through their
// strides; the output is row-contiguous. Rows that see no key are written as zeros.
//
// Decode (Lq <= 4), flash-decoding (float16 / bfloat16 with head_dim 64 or 128 and no mask run
// on tensor cores first, attention_decode.cu): the keys are split into chunks across thread blocks. A block
// takes one chunk for one (batch, kv head) and up to 8 query rows of that kv head's group (all
// its query heads times Lq), so K and V are read once per group rather than once per query head.
// Per 128-key tile, each thread scores one key; P V is then accumulated by lane groups that read
// whole V rows. A second kernel merges the chunks.
//
// Prefill: a block per (64 query rows, query head, batch); 64-key tiles of K and V are staged in
// shared memory as float32, each warp owns 8 query rows, lane j scores keys j and j + 32. Causal
// tiles past the last query's position are skipped. SIMT; long float16 / bfloat16 prefills
// without a mask go to cuDNN's fused attention first (cudnn_attention.cpp), then
// attention_prefill.cu's tensor-core kernel takes the cases it supports.
//
// Instantiated per dtype (float32, float16, bfloat16); the prefill kernel also per output width
// (head_dim_v up to 64, 128, 256), the decode kernel handles any head_dim up to 256.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kiln/backend/cuda/attention.cuh"
#include "kiln/backend/cuda/cudnn_attention.h"
#include "kiln/backend/cuda/utils.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_attention.h"

namespace kiln::cuda {

namespace {

// Elements d0 .. d0 + N - 1 of a row as float32 (zeros past n): one 16-byte load when `vec`
// (then n is a multiple of N and the row is aligned), else strided scalar loads.
template <class T, int N>
__device__ __forceinline__ void load_piece(const T* row, int64_t stride, int d0, int n, bool vec, float (&x)[N]) {
  if (vec) {
    if (d0 < n) {
      Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(row + d0);
#pragma unroll
      for (int e = 0; e < N; ++e) x[e] = static_cast<float>(v.v[e]);
    } else {
#pragma unroll
      for (int e = 0; e < N; ++e) x[e] = 0.f;
    }
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) {
      x[e] = d0 + e < n ? static_cast<float>(row[static_cast<int64_t>(d0 + e) * stride]) : 0.f;
    }
  }
}

// ---- decode: split-K partials, then a combine ----

constexpr int kDecodeThreads = 128;
constexpr int kDecodeWarps = kDecodeThreads / 32;
// Keys per tile: one per thread when scoring.
constexpr int kDecodeTile = kDecodeThreads;
// Loads a thread keeps in flight: 16-byte pieces of its K row, and V pieces of one batch.
constexpr int kKPieces = 16;
constexpr int kVBatch = 8;

template <class T>
constexpr int vec_n() {
  return 16 / static_cast<int>(sizeof(T));
}

// Grid (splits, B * Hkv, row groups). Block (split, (b, hk), z) takes keys [split * chunk,
// + chunk) of kv head hk for ROWS query rows of its group: row rr = z * ROWS + r stands for head
// hk * group + rr / Lq and query rr % Lq, so K and V are read once for the whole group.
// Per tile of 128 keys: each thread scores one key against every row (its K row read in 16-byte
// pieces, all loads in flight at once, the first batch of its V pieces requested beside them);
// the block then rescales its running softmax; then
// thread (g, c) accumulates feature piece c of P V over keys g, g + G, ... Lane groups of
// CH = pieces per V row read whole rows, coalesced. Writes unnormalized partial outputs part_o
// (split, row, Dv) and (max, sum) part_ml (split, row, 2), row = (b * Hq + h) * Lq + i.
// V pieces [d0, d0 + N) of the tile's keys first + u * G (u < kVBatch, below nk) into vbuf, all
// loads issued before any is used.
template <class T, int N>
__device__ __forceinline__ void load_v_batch(Vec<T, N> (&vbuf)[kVBatch], const T* vbase, int64_t row_stride, int j0,
                                             int nk, int first, int G, int d0, int Dv) {
#pragma unroll
  for (int u = 0; u < kVBatch; ++u) {
    const int jj = first + u * G;
    if (jj < nk && d0 < Dv) vbuf[u] = *reinterpret_cast<const Vec<T, N>*>(vbase + (j0 + jj) * row_stride + d0);
  }
}

template <class T, int ROWS>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_partial_kernel(AttnParams<T> p, int chunk, int CH, float* __restrict__ part_o,
                          float* __restrict__ part_ml) {
  constexpr int N = vec_n<T>();
  constexpr int kMaxG = kDecodeThreads;  // key groups when a V row is one piece
  // The queries and one tile's probabilities while looping; afterwards the same memory holds
  // each key group's partial outputs, ROWS x (CH * N) per group.
  constexpr int kLoop = ROWS * (kMaxD + kDecodeTile), kRed = ROWS * kMaxG * N;
  __shared__ float pool[kLoop > kRed ? kLoop : kRed];
  float(*qs)[kMaxD] = reinterpret_cast<float(*)[kMaxD]>(pool);
  float(*S)[kDecodeTile] = reinterpret_cast<float(*)[kDecodeTile]>(pool + ROWS * kMaxD);
  float* red = pool;
  __shared__ float wmax[kDecodeWarps][ROWS];
  __shared__ float m_sh[ROWS], alpha_sh[ROWS];
  __shared__ float lred[kMaxG][ROWS];

  const int split = blockIdx.x, bh = blockIdx.y, z = blockIdx.z;
  const int b = bh / p.Hkv, hk = bh % p.Hkv;
  const int rows_total = p.group * p.Lq;
  const int row0 = z * ROWS;
  const int nrows = min(ROWS, rows_total - row0);
  const int j_begin = split * chunk, j_end = min(p.Lk, j_begin + chunk);
  const int t = threadIdx.x, warp = t / 32, lane = t % 32;
  const int G = kDecodeThreads / CH, g = t / CH, c = t % CH;
  const int width = CH * N;  // padded V row

  for (int idx = t; idx < ROWS * p.D; idx += kDecodeThreads) {
    const int r = idx / p.D, d = idx % p.D;
    float x = 0.f;
    if (r < nrows) {
      const int rr = row0 + r, h = hk * p.group + rr / p.Lq, i = rr % p.Lq;
      x = static_cast<float>(p.q[b * p.qs[0] + h * p.qs[1] + i * p.qs[2] + d * p.qs[3]]);
    }
    qs[r][d] = x;
  }
  if (t < ROWS) m_sh[t] = -INFINITY;

  float acc[ROWS][N], lsum[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    lsum[r] = 0.f;
#pragma unroll
    for (int e = 0; e < N; ++e) acc[r][e] = 0.f;
  }
  const T* kbase = p.k + b * p.ks[0] + hk * p.ks[1];
  const T* vbase = p.v + b * p.vs[0] + hk * p.vs[1];
  __syncthreads();

  const int d0 = c * N;
  Vec<T, N> vbuf[kVBatch];
  for (int j0 = j_begin; j0 < j_end; j0 += kDecodeTile) {
    const int nk = min(kDecodeTile, j_end - j0);
    // The first batch of V is requested now, so that its loads overlap K's and the scoring.
    if (p.vec_v) load_v_batch(vbuf, vbase, p.vs[2], j0, nk, g, G, d0, p.Dv);
    // Scores of key j0 + t.
    const int j = j0 + t;
    float s[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) s[r] = 0.f;
    if (j < j_end) {
      const T* krow = kbase + static_cast<int64_t>(j) * p.ks[2];
      if (p.vec_k) {
        // kKPieces 16-byte pieces of the K row in flight at once (a whole row for head_dim 128).
        for (int d0 = 0; d0 < p.D; d0 += kKPieces * N) {
          Vec<T, N> kv[kKPieces];
#pragma unroll
          for (int u = 0; u < kKPieces; ++u)
            if (d0 + u * N < p.D) kv[u] = *reinterpret_cast<const Vec<T, N>*>(krow + d0 + u * N);
#pragma unroll
          for (int u = 0; u < kKPieces; ++u) {
            if (d0 + u * N >= p.D) break;
#pragma unroll
            for (int e = 0; e < N; ++e) {
              const float kx = static_cast<float>(kv[u].v[e]);
#pragma unroll
              for (int r = 0; r < ROWS; ++r) s[r] += qs[r][d0 + u * N + e] * kx;
            }
          }
        }
      } else {
        for (int d = 0; d < p.D; ++d) {
          const float kx = static_cast<float>(krow[d * p.ks[3]]);
#pragma unroll
          for (int r = 0; r < ROWS; ++r) s[r] += qs[r][d] * kx;
        }
      }
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const int rr = row0 + r;
      s[r] = j < j_end && r < nrows ? masked_score(p, s[r], b, hk * p.group + rr / p.Lq, rr % p.Lq, j) : -INFINITY;
      float mx = s[r];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      if (lane == 0) wmax[warp][r] = mx;
    }
    __syncthreads();
    // New running max per row; the old state is scaled by alpha.
    if (t < ROWS) {
      float mx = m_sh[t];
#pragma unroll
      for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, wmax[w][t]);
      alpha_sh[t] = mx == -INFINITY ? 1.f : expf(m_sh[t] - mx);
      m_sh[t] = mx;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < ROWS; ++r) S[r][t] = s[r] == -INFINITY ? 0.f : expf(s[r] - m_sh[r]);
    __syncthreads();
    // P V for this tile: thread (g, c) takes keys g, g + G, ...
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const float a = alpha_sh[r];
      lsum[r] *= a;
#pragma unroll
      for (int e = 0; e < N; ++e) acc[r][e] *= a;
    }
    if (p.vec_v) {
      for (int base = 0; base < nk; base += kVBatch * G) {
        if (base > 0) load_v_batch(vbuf, vbase, p.vs[2], j0, nk, g + base, G, d0, p.Dv);
#pragma unroll
        for (int u = 0; u < kVBatch; ++u) {
          const int jj = g + base + u * G;
          if (jj >= nk) break;
          float vx[N];
#pragma unroll
          for (int e = 0; e < N; ++e) vx[e] = d0 < p.Dv ? static_cast<float>(vbuf[u].v[e]) : 0.f;
#pragma unroll
          for (int r = 0; r < ROWS; ++r) {
            const float pj = S[r][jj];
            lsum[r] += pj;
#pragma unroll
            for (int e = 0; e < N; ++e) acc[r][e] += pj * vx[e];
          }
        }
      }
    } else {
      for (int jj = g; jj < nk; jj += G) {
        float vx[N];
        const T* vrow = vbase + static_cast<int64_t>(j0 + jj) * p.vs[2];
#pragma unroll
        for (int e = 0; e < N; ++e) vx[e] = d0 + e < p.Dv ? static_cast<float>(vrow[(d0 + e) * p.vs[3]]) : 0.f;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
          const float pj = S[r][jj];
          lsum[r] += pj;
#pragma unroll
          for (int e = 0; e < N; ++e) acc[r][e] += pj * vx[e];
        }
      }
    }
    __syncthreads();  // S and alpha are rewritten by the next tile
  }

  // Sum the key groups (the loop ended with a barrier, so the pool is free).
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
#pragma unroll
    for (int e = 0; e < N; ++e) red[(g * ROWS + r) * width + c * N + e] = acc[r][e];
    if (c == 0) lred[g][r] = lsum[r];
  }
  __syncthreads();
  for (int idx = t; idx < nrows * p.Dv; idx += kDecodeThreads) {
    const int r = idx / p.Dv, d = idx % p.Dv;
    float o = 0.f;
    for (int gg = 0; gg < G; ++gg) o += red[(gg * ROWS + r) * width + d];
    const int rr = row0 + r, h = hk * p.group + rr / p.Lq, i = rr % p.Lq;
    const int64_t row = (static_cast<int64_t>(b) * p.Hq + h) * p.Lq + i;
    const int64_t prow = static_cast<int64_t>(split) * p.B * p.Hq * p.Lq + row;
    part_o[prow * p.Dv + d] = o;
    if (d == 0) {
      float l = 0.f;
      for (int gg = 0; gg < G; ++gg) l += lred[gg][r];
      part_ml[prow * 2] = m_sh[r];
      part_ml[prow * 2 + 1] = l;
    }
  }
}

// One block per output row: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M), or 0 when no
// split saw a key.
template <class T>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_combine_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml, T* __restrict__ out,
                          int64_t rows, int Dv, int splits) {
  const int64_t row = blockIdx.x;
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, part_ml[(s * rows + row) * 2]);
  float sum = 0.f;
  if (mx != -INFINITY) {
    for (int s = 0; s < splits; ++s) {
      sum += part_ml[(s * rows + row) * 2 + 1] * expf(part_ml[(s * rows + row) * 2] - mx);
    }
  }
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
    float o = 0.f;
    if (mx != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        o += part_o[(s * rows + row) * Dv + d] * expf(part_ml[(s * rows + row) * 2] - mx);
      }
    }
    out[row * Dv + d] = convert<T>(o * inv);
  }
}

// ---- prefill: 64 x 64 tiles ----

constexpr int kTile = 64;
constexpr int kPrefillThreads = 256;
constexpr int kRowsPerWarp = kTile / (kPrefillThreads / 32);  // 8

// Dynamic shared memory: Q (64 x D), K (64 x (D + 1), padded so that lane j reading row j is free
// of bank conflicts), V (64 x Dv), all float32.
size_t prefill_smem(int D, int Dv) {
  return sizeof(float) * (static_cast<size_t>(kTile) * D + static_cast<size_t>(kTile) * (D + 1) +
                          static_cast<size_t>(kTile) * Dv);
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// Rows j0 .. j0 + 63 of K or V (n features, zeros past Lk) into shared memory as float32, row
// stride ld: 16-byte loads when `vec`, else strided scalar loads. Called by the whole block.
template <class T>
__device__ __forceinline__ void load_tile(const T* base, const int64_t (&s)[4], int j0, int Lk, int n, bool vec,
                                          float* dst, int ld) {
  constexpr int N = vec_n<T>();
  if (vec) {
    const int per_row = n / N;
    for (int idx = threadIdx.x; idx < kTile * per_row; idx += kPrefillThreads) {
      const int r = idx / per_row, d0 = (idx % per_row) * N, j = j0 + r;
      float x[N];
      load_piece<T, N>(j < Lk ? base + static_cast<int64_t>(j) * s[2] : base, 1, d0, j < Lk ? n : 0, true, x);
#pragma unroll
      for (int e = 0; e < N; ++e) dst[r * ld + d0 + e] = x[e];
    }
  } else {
    for (int idx = threadIdx.x; idx < kTile * n; idx += kPrefillThreads) {
      const int r = idx / n, d = idx % n, j = j0 + r;
      dst[r * ld + d] = j < Lk ? static_cast<float>(base[static_cast<int64_t>(j) * s[2] + d * s[3]]) : 0.f;
    }
  }
}

// Grid (query tiles, Hq, B). kEPL: output elements per lane (Dv <= 32 * kEPL); lane owns
// d = lane + 32 * e.
template <class T, int kEPL>
__global__ void __launch_bounds__(kPrefillThreads) prefill_kernel(AttnParams<T> p) {
  extern __shared__ float smem[];
  const int D = p.D, Dv = p.Dv, KD = D + 1;
  float* Qs = smem;
  float* Ks = Qs + kTile * D;
  float* Vs = Ks + kTile * KD;
  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z;
  const int hk = h / p.group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int idx = threadIdx.x; idx < kTile * D; idx += kPrefillThreads) {
    const int r = idx / D, d = idx % D, i = q0 + r;
    Qs[idx] = i < p.Lq ? static_cast<float>(p.q[b * p.qs[0] + h * p.qs[1] + i * p.qs[2] + d * p.qs[3]]) : 0.f;
  }

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kEPL];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int e = 0; e < kEPL; ++e) acc[r][e] = 0.f;
  }

  // Causal: the tile's last query sits at Lk - Lq + min(q0 + 63, Lq - 1); later keys are unseen.
  const int kend = p.causal ? min(p.Lk, p.Lk - p.Lq + min(q0 + kTile, p.Lq)) : p.Lk;
  const T* kbase = p.k + b * p.ks[0] + hk * p.ks[1];
  const T* vbase = p.v + b * p.vs[0] + hk * p.vs[1];
  for (int j0 = 0; j0 < kend; j0 += kTile) {
    __syncthreads();  // the previous tile is no longer read (and Q is written, the first time)
    load_tile(kbase, p.ks, j0, p.Lk, D, p.vec_k, Ks, KD);
    load_tile(vbase, p.vs, j0, p.Lk, Dv, p.vec_v, Vs, Dv);
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr, i = q0 + r;
      const float* qr = Qs + r * D;
      const float* k0 = Ks + lane * KD;
      const float* k1 = Ks + (lane + 32) * KD;
      float d0 = 0.f, d1 = 0.f;
      for (int d = 0; d < D; ++d) {
        const float x = qr[d];
        d0 += x * k0[d];
        d1 += x * k1[d];
      }
      const int ja = j0 + lane, jb = j0 + lane + 32;
      const bool live = i < p.Lq;
      const float s0 = live && ja < p.Lk ? masked_score(p, d0, b, h, i, ja) : -INFINITY;
      const float s1 = live && jb < p.Lk ? masked_score(p, d1, b, h, i, jb) : -INFINITY;
      const float mx = warp_max(fmaxf(s0, s1));
      if (mx == -INFINITY) continue;  // warp-uniform: this row sees nothing in this tile
      const float mn = fmaxf(m[rr], mx);
      const float alpha = expf(m[rr] - mn);
      const float p0 = s0 == -INFINITY ? 0.f : expf(s0 - mn);
      const float p1 = s1 == -INFINITY ? 0.f : expf(s1 - mn);
      l[rr] = l[rr] * alpha + warp_sum(p0 + p1);
      m[rr] = mn;
#pragma unroll
      for (int e = 0; e < kEPL; ++e) acc[rr][e] *= alpha;
      // A bounded unroll: fully unrolled, the narrow (kEPL = 2) variant spills.
#pragma unroll 8
      for (int jj = 0; jj < 32; ++jj) {
        const float pa = __shfl_sync(0xffffffffu, p0, jj);
        const float* vr = Vs + jj * Dv;
#pragma unroll
        for (int e = 0; e < kEPL; ++e) {
          const int d = lane + 32 * e;
          if (d < Dv) acc[rr][e] += pa * vr[d];
        }
      }
#pragma unroll 8
      for (int jj = 0; jj < 32; ++jj) {
        const float pb = __shfl_sync(0xffffffffu, p1, jj);
        const float* vr = Vs + (jj + 32) * Dv;
#pragma unroll
        for (int e = 0; e < kEPL; ++e) {
          const int d = lane + 32 * e;
          if (d < Dv) acc[rr][e] += pb * vr[d];
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int i = q0 + warp * kRowsPerWarp + rr;
    if (i >= p.Lq) continue;
    const float inv = l[rr] > 0.f ? 1.f / l[rr] : 0.f;  // no key seen: zeros
    T* o = p.out + ((static_cast<int64_t>(b) * p.Hq + h) * p.Lq + i) * Dv;
#pragma unroll
    for (int e = 0; e < kEPL; ++e) {
      const int d = lane + 32 * e;
      if (d < Dv) o[d] = convert<T>(acc[rr][e] * inv);
    }
  }
}

// ---- host side ----

// K or V rows can be read as aligned 16-byte vectors: unit feature stride, rows a whole number
// of vectors apart and the first aligned.
template <class T>
bool vec_ok(const T* base, const int64_t (&s)[4], int n) {
  constexpr int N = vec_n<T>();
  return s[3] == 1 && n % N == 0 && s[0] % N == 0 && s[1] % N == 0 && s[2] % N == 0 && aligned16(base);
}

template <class T, int ROWS>
void launch_decode_rows(const AttnParams<T>& p, const array& out) {
  constexpr int N = vec_n<T>();
  // Lanes per V row: a power of two covering Dv in 16-byte pieces (at most the block).
  int CH = 1;
  while (CH * N < p.Dv) CH *= 2;
  if (CH > kDecodeThreads || p.D > kMaxD) {
    fail<ValueError>("[scaled_dot_product_attention] head_dim ", p.D, "/", p.Dv, " is too large for the decode kernel");
  }
  const int64_t bh = static_cast<int64_t>(p.B) * p.Hkv;
  const int row_groups = (p.group * p.Lq + ROWS - 1) / ROWS;
  // About four blocks per SM in all, each at least one tile of keys.
  const int64_t want = std::max<int64_t>(1, (4LL * num_sms(out) + bh * row_groups - 1) / (bh * row_groups));
  const int64_t max_splits = std::max<int64_t>(1, (p.Lk + kDecodeTile - 1) / kDecodeTile);
  int splits = static_cast<int>(std::min(want, max_splits));
  int chunk = (p.Lk + splits - 1) / splits;
  chunk = (chunk + kDecodeTile - 1) / kDecodeTile * kDecodeTile;
  splits = (p.Lk + chunk - 1) / chunk;
  if (bh > 65535 || row_groups > 65535 || splits > 0x7fffffff) {
    fail<ValueError>("[scaled_dot_product_attention] decode grid too large: ", bh, " x ", splits, " x ", row_groups);
  }
  const int64_t rows = static_cast<int64_t>(p.B) * p.Hq * p.Lq;
  // Scratch for the partials, freed in stream order after the kernels.
  auto scratch = std::make_shared<Buffer>(sizeof(float) * static_cast<size_t>(splits) * rows * (p.Dv + 2));
  float* part_o = static_cast<float*>(scratch->write_gpu(out.device().index, out.stream().index));
  float* part_ml = part_o + static_cast<int64_t>(splits) * rows * p.Dv;
  cudaStream_t st = stream_of(out);
  decode_partial_kernel<T, ROWS><<<dim3(splits, static_cast<unsigned>(bh), row_groups), kDecodeThreads, 0, st>>>(
      p, chunk, CH, part_o, part_ml);
  check_launch("scaled_dot_product_attention");
  decode_combine_kernel<T><<<static_cast<unsigned>(rows), kDecodeThreads, 0, st>>>(part_o, part_ml, p.out, rows, p.Dv,
                                                                                    splits);
  check_launch("scaled_dot_product_attention");
}

template <class T>
void launch_decode(const AttnParams<T>& p, const array& out) {
  const int rows = p.group * p.Lq;
  if (rows <= 1) {
    launch_decode_rows<T, 1>(p, out);
  } else if (rows <= 2) {
    launch_decode_rows<T, 2>(p, out);
  } else if (rows <= 4) {
    launch_decode_rows<T, 4>(p, out);
  } else {
    launch_decode_rows<T, 8>(p, out);
  }
}

template <class T, int kEPL>
void launch_prefill_with(const AttnParams<T>& p, const array& out) {
  const size_t smem = prefill_smem(p.D, p.Dv);
  const int dev = out.device().index;
  if (smem > device_props(dev).sharedMemPerBlockOptin) {
    fail<ValueError>("[scaled_dot_product_attention] head_dim ", p.D, "/", p.Dv, " needs ", smem,
                     " bytes of shared memory, more than the GPU offers");
  }
  cudaStream_t st = stream_of(out);  // also makes the device current for the attribute below
  check(cudaFuncSetAttribute(prefill_kernel<T, kEPL>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem)),
        "scaled_dot_product_attention: shared memory size");
  const int64_t tiles = (p.Lq + kTile - 1) / kTile;
  if (p.Hq > 65535 || p.B > 65535) {
    fail<ValueError>("[scaled_dot_product_attention] grid too large: ", p.Hq, " heads, batch ", p.B);
  }
  prefill_kernel<T, kEPL><<<dim3(static_cast<unsigned>(tiles), p.Hq, p.B), kPrefillThreads, smem, st>>>(p);
  check_launch("scaled_dot_product_attention");
}

template <class T>
void launch_prefill(const AttnParams<T>& p, const array& out) {
  if (launch_prefill_mma(p, out)) return;
  if (p.Dv <= 64) {
    launch_prefill_with<T, 2>(p, out);
  } else if (p.Dv <= 128) {
    launch_prefill_with<T, 4>(p, out);
  } else {
    launch_prefill_with<T, 8>(p, out);
  }
}

void copy_strides(const array& a, int64_t (&s)[4]) {
  for (int i = 0; i < 4; ++i) s[i] = a.strides()[i];
}

template <class T>
void attention_typed(const ScaledDotProductAttention& prim, const std::vector<array>& inputs, array& out) {
  T* dst = alloc_out<T>(out);
  if (out.size() == 0) return;
  const array &q = inputs[0], &k = inputs[1], &v = inputs[2];
  if (k.shape(2) == 0) {  // no keys: every row is zeros
    check(cudaMemsetAsync(dst, 0, out.nbytes(), stream_of(out)), "scaled_dot_product_attention: zero fill");
    return;
  }
  AttnParams<T> p{};
  p.q = in_ptr<T>(q, out);
  p.k = in_ptr<T>(k, out);
  p.v = in_ptr<T>(v, out);
  p.out = dst;
  copy_strides(q, p.qs);
  copy_strides(k, p.ks);
  copy_strides(v, p.vs);
  p.B = static_cast<int>(out.shape(0));
  p.Hq = static_cast<int>(out.shape(1));
  p.Lq = static_cast<int>(out.shape(2));
  p.Dv = static_cast<int>(out.shape(3));
  p.Hkv = static_cast<int>(k.shape(1));
  p.Lk = static_cast<int>(k.shape(2));
  p.D = static_cast<int>(q.shape(3));
  p.group = p.Hq / p.Hkv;
  p.scale = prim.scale;
  p.causal = prim.causal;
  p.mask_kind = kNoMask;
  p.mask = nullptr;
  if (prim.has_mask) {
    const array& m = inputs[3];
    copy_strides(m, p.ms);
    if (prim.mask_is_bool) {
      p.mask_kind = kBoolMask;
      p.mask = in_ptr<bool>(m, out);
    } else {
      p.mask_kind = kAddMask;
      p.mask = in_ptr<T>(m, out);
    }
  }
  p.vec_k = vec_ok(p.k, p.ks, p.D);
  p.vec_v = vec_ok(p.v, p.vs, p.Dv);
  if (k.shape(2) > 0x7fffffff || out.shape(2) > 0x7fffffff) {
    fail<ValueError>("[scaled_dot_product_attention] sequence lengths above 2^31 are not supported");
  }
  if (p.Lq <= 4) {
    if (!launch_decode_mma(p, out)) launch_decode(p, out);
  } else if (!cudnn_attention(prim, q, k, v, out, p.q, p.k, p.v, p.out)) {
    launch_prefill(p, out);
  }
}

void attention_entry(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const ScaledDotProductAttention&>(prim);
  switch (out.dtype()) {
    case float32: attention_typed<float>(p, inputs, out); break;
    case float16: attention_typed<float16_t>(p, inputs, out); break;
    case bfloat16: attention_typed<bfloat16_t>(p, inputs, out); break;
    default: detail::unsupported_dtype(p.name(), out.dtype());
  }
}

}  // namespace

void register_gpu_attention() { register_kernel(Backend::gpu, "scaled_dot_product_attention", attention_entry); }

}  // namespace kiln::cuda
