// CUDA kernels of the fused fast ops: rms_norm, layer_norm, rope and silu_mul. The front ends give
// them row-contiguous inputs of the output's dtype. The norms run a warp per row up to 1024
// elements (several rows per block) and a block per row beyond, reading 16-byte vectors when
// rows are aligned; statistics are accumulated in acc_t<T> (float32 for the 16-bit floats).
// Each op is one kernel per dtype: the row width and the vector path are run-time choices.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kiln/backend/cuda/utils.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_fast.h"

namespace kiln::cuda {

namespace {

constexpr int kBlock = 256;
// Rows up to this length get a warp each; longer ones a block.
constexpr int64_t kWarpRowMax = 1024;

__device__ __forceinline__ float sqrt_(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_(double v) { return ::sqrt(v); }
__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return ::exp(v); }

template <class T>
constexpr int vec_width() {
  return static_cast<int>(16 / sizeof(T));
}

// The threads of one row: `tpr` (32, or the whole block) threads, `t` this thread's rank.
struct RowThreads {
  int64_t row;
  int t;
  int tpr;
};

__device__ __forceinline__ RowThreads row_threads(int tpr) {
  return {static_cast<int64_t>(blockIdx.x) * (blockDim.x / tpr) + threadIdx.x / tpr, static_cast<int>(threadIdx.x % tpr),
          tpr};
}

// Sum over the threads of a row; every thread gets the result. A block-wide row goes through
// `smem` (32 values), with barriers on both sides so that it can be reused at once.
template <class A>
__device__ __forceinline__ A row_sum(A v, const RowThreads& rt, A* smem) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  if (rt.tpr > 32) {
    if ((threadIdx.x & 31) == 0) smem[threadIdx.x >> 5] = v;
    __syncthreads();
    v = 0;
    for (int w = 0; w < rt.tpr / 32; ++w) v += smem[w];  // same order in every thread
    __syncthreads();
  }
  return v;
}

// Calls f(j, x[j]) for this thread's share of a row of D elements.
template <class T, class F>
__device__ __forceinline__ void visit_row(const T* __restrict__ xr, int64_t D, const RowThreads& rt, bool vec, F f) {
  constexpr int N = vec_width<T>();
  if (vec) {
    for (int64_t j = static_cast<int64_t>(rt.t) * N; j < D; j += static_cast<int64_t>(rt.tpr) * N) {
      Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(xr + j);
#pragma unroll
      for (int k = 0; k < N; ++k) f(j + k, v.v[k]);
    }
  } else {
    for (int64_t j = rt.t; j < D; j += rt.tpr) f(j, xr[j]);
  }
}

// yr[j] = f(j, xr[j]) for this thread's share of a row.
template <class T, class F>
__device__ __forceinline__ void map_row(const T* __restrict__ xr, T* __restrict__ yr, int64_t D, const RowThreads& rt,
                                        bool vec, F f) {
  constexpr int N = vec_width<T>();
  if (vec) {
    for (int64_t j = static_cast<int64_t>(rt.t) * N; j < D; j += static_cast<int64_t>(rt.tpr) * N) {
      Vec<T, N> v = *reinterpret_cast<const Vec<T, N>*>(xr + j);
      Vec<T, N> r;
#pragma unroll
      for (int k = 0; k < N; ++k) r.v[k] = f(j + k, v.v[k]);
      *reinterpret_cast<Vec<T, N>*>(yr + j) = r;
    }
  } else {
    for (int64_t j = rt.t; j < D; j += rt.tpr) yr[j] = f(j, xr[j]);
  }
}

// Launch shape of a row kernel: a warp per row (kBlock / 32 rows a block) or a block per row.
struct RowLaunch {
  unsigned grid;
  int tpr;
  bool vec;
};

template <class T>
RowLaunch row_launch(int64_t rows, int64_t D, const T* x, const T* y) {
  RowLaunch l;
  l.tpr = D <= kWarpRowMax ? 32 : kBlock;
  l.grid = blocks_for(rows, kBlock / l.tpr);
  l.vec = D % vec_width<T>() == 0 && aligned16(x) && aligned16(y);
  return l;
}

// ---- rms_norm ----

template <class T>
__global__ void __launch_bounds__(kBlock) rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                          T* __restrict__ out, int64_t rows, int64_t D, float eps,
                                                          int tpr, bool vec) {
  using A = acc_t<T>;
  __shared__ A smem[32];
  const RowThreads rt = row_threads(tpr);
  if (rt.row >= rows) return;  // uniform per row, so per block when a block holds one row
  const T* xr = x + rt.row * D;
  A ss = 0;
  visit_row(xr, D, rt, vec, [&](int64_t, T v) {
    A a = static_cast<A>(v);
    ss += a * a;
  });
  ss = row_sum(ss, rt, smem);
  const A inv = A(1) / sqrt_(ss / static_cast<A>(D) + static_cast<A>(eps));
  map_row(xr, out + rt.row * D, D, rt, vec, [&](int64_t j, T v) {
    A y = static_cast<A>(v) * inv;
    if (w) y *= static_cast<A>(w[j]);
    return convert<T>(y);
  });
}

template <class T>
void rms_norm_typed(const RMSNorm& p, const std::vector<array>& inputs, array& out) {
  T* dst = alloc_out<T>(out);
  if (out.size() == 0) return;
  const T* x = in_ptr<T>(inputs[0], out);
  const T* w = inputs.size() > 1 ? in_ptr<T>(inputs[1], out) : nullptr;
  const int64_t D = out.shape().back(), rows = out.size() / D;
  RowLaunch l = row_launch(rows, D, x, dst);
  rms_norm_kernel<T><<<l.grid, kBlock, 0, stream_of(out)>>>(x, w, dst, rows, D, p.eps, l.tpr, l.vec);
  check_launch("rms_norm");
}

void rms_norm_entry(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const RMSNorm&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { rms_norm_typed<T>(p, inputs, out); });
}

// ---- layer_norm ----

// Three sweeps of the row (mean, variance about the mean, output): the two-pass variance does not
// cancel as E[x^2] - mean^2 can, and the row is in L1/L2 after the first.
template <class T>
__global__ void __launch_bounds__(kBlock) layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                            const T* __restrict__ b, T* __restrict__ out, int64_t rows,
                                                            int64_t D, float eps, int tpr, bool vec) {
  using A = acc_t<T>;
  __shared__ A smem[32];
  const RowThreads rt = row_threads(tpr);
  if (rt.row >= rows) return;
  const T* xr = x + rt.row * D;
  A sum = 0;
  visit_row(xr, D, rt, vec, [&](int64_t, T v) { sum += static_cast<A>(v); });
  const A mean = row_sum(sum, rt, smem) / static_cast<A>(D);
  A sq = 0;
  visit_row(xr, D, rt, vec, [&](int64_t, T v) {
    A d = static_cast<A>(v) - mean;
    sq += d * d;
  });
  const A inv = A(1) / sqrt_(row_sum(sq, rt, smem) / static_cast<A>(D) + static_cast<A>(eps));
  map_row(xr, out + rt.row * D, D, rt, vec, [&](int64_t j, T v) {
    A y = (static_cast<A>(v) - mean) * inv;
    if (w) y *= static_cast<A>(w[j]);
    if (b) y += static_cast<A>(b[j]);
    return convert<T>(y);
  });
}

template <class T>
void layer_norm_typed(const LayerNorm& p, const std::vector<array>& inputs, array& out) {
  T* dst = alloc_out<T>(out);
  if (out.size() == 0) return;
  const T* x = in_ptr<T>(inputs[0], out);
  size_t next = 1;
  const T* w = p.has_weight ? in_ptr<T>(inputs[next++], out) : nullptr;
  const T* b = p.has_bias ? in_ptr<T>(inputs[next++], out) : nullptr;
  const int64_t D = out.shape().back(), rows = out.size() / D;
  RowLaunch l = row_launch(rows, D, x, dst);
  layer_norm_kernel<T><<<l.grid, kBlock, 0, stream_of(out)>>>(x, w, b, dst, rows, D, p.eps, l.tpr, l.vec);
  check_launch("layer_norm");
}

void layer_norm_entry(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const LayerNorm&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { layer_norm_typed<T>(p, inputs, out); });
}

// ---- rope ----

struct RopeArgs {
  int64_t rows, L, D;
  int dims;
  bool traditional;
  float log2_base, scale;
  int offset;
  // The input's layout: rows are row-major over shape[0 .. nd) (the axes before the last), read
  // through strides; sD is the feature stride. The output is row-contiguous.
  int nd;
  int64_t shape[kMaxDims], strides[kMaxDims];
  int64_t sD;
};

__device__ __forceinline__ int64_t rope_row_offset(const RopeArgs& a, int64_t r) {
  int64_t off = 0;
  for (int d = a.nd - 1; d >= 0; --d) {
    off += (r % a.shape[d]) * a.strides[d];
    r /= a.shape[d];
  }
  return off;
}

// A warp per row (its strided offset found once), lane k taking the row's rotated pairs and
// passed-through features k, k + 32, ...: each row has dims / 2 pairs, then D - dims features
// copied as they are. Angles in float32, as the CPU kernel computes them.
template <class T>
__global__ void __launch_bounds__(kBlock) rope_kernel(const T* __restrict__ x, const float* __restrict__ freqs,
                                                      const int32_t* __restrict__ offset, T* __restrict__ out,
                                                      RopeArgs a) {
  using A = acc_t<T>;
  const int half = a.dims / 2;
  const int per_row = half + static_cast<int>(a.D - a.dims);
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  const int64_t base = a.offset + (offset ? *offset : 0);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < a.rows; r += warps) {
    const T* xr = x + rope_row_offset(a, r);
    T* yr = out + r * a.D;
    const float pos = static_cast<float>(base + r % a.L);
    for (int j = lane; j < per_row; j += 32) {
      if (j < half) {
        const float inv = freqs ? a.scale / freqs[j] : fast_math::rope_inv_freq(j, a.dims, a.log2_base, a.scale);
        float sf, cf;
        sincosf(pos * inv, &sf, &cf);
        const A s = sf, c = cf;
        const int64_t i0 = a.traditional ? 2 * j : j, i1 = i0 + (a.traditional ? 1 : half);
        const A x0 = static_cast<A>(xr[i0 * a.sD]), x1 = static_cast<A>(xr[i1 * a.sD]);
        yr[i0] = convert<T>(x0 * c - x1 * s);
        yr[i1] = convert<T>(x0 * s + x1 * c);
      } else {
        const int64_t k = a.dims + (j - half);
        yr[k] = xr[k * a.sD];
      }
    }
  }
}

template <class T>
void rope_typed(const RoPE& p, const std::vector<array>& inputs, array& out) {
  T* dst = alloc_out<T>(out);
  if (out.size() == 0) return;
  const T* x = in_ptr<T>(inputs[0], out);
  const float* freqs = p.has_freqs ? in_ptr<float>(inputs[1], out) : nullptr;
  RopeArgs a;
  a.D = out.shape().back();
  a.L = out.shape()[out.ndim() - 2];
  a.rows = out.size() / a.D;
  a.dims = p.dims;
  a.traditional = p.traditional;
  a.log2_base = p.has_freqs ? 0.f : std::log2(p.base);
  a.scale = p.scale;
  a.offset = p.offset;
  const array& in = inputs[0];
  a.nd = in.ndim() - 1;
  if (a.nd > kMaxDims) fail<ValueError>("[rope] at most ", kMaxDims + 1, " dimensions, got ", in.ndim());
  for (int d = 0; d < a.nd; ++d) {
    a.shape[d] = in.shape(d);
    a.strides[d] = in.strides()[d];
  }
  a.sD = in.strides().back();
  const int64_t warps_per_block = kBlock / 32;
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>((a.rows + warps_per_block - 1) / warps_per_block, int64_t{num_sms(out)} * 32));
  const int32_t* offset = p.has_offset_array ? in_ptr<int32_t>(inputs[1 + p.has_freqs], out) : nullptr;
  rope_kernel<T><<<grid, kBlock, 0, stream_of(out)>>>(x, freqs, offset, dst, a);
  check_launch("rope");
}

void rope_entry(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const RoPE&>(prim);
  KILN_DISPATCH_FLOAT(p.name(), out.dtype(), { rope_typed<T>(p, inputs, out); });
}

// ---- silu_mul ----

template <class T>
__device__ __forceinline__ T silu_mul_one(T g, T u) {
  using A = acc_t<T>;
  const A v = static_cast<A>(g);
  return convert<T>(v / (A(1) + exp_(-v)) * static_cast<A>(u));
}

// N elements a thread: vec_width<T>() as 16-byte vectors when all three pointers are aligned,
// else 1.
template <class T>
__global__ void __launch_bounds__(kBlock) silu_mul_kernel(const T* __restrict__ g, const T* __restrict__ u,
                                                          T* __restrict__ out, int64_t n, bool vec) {
  constexpr int N = vec_width<T>();
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (!vec) {
    if (tid < n) out[tid] = silu_mul_one(g[tid], u[tid]);
    return;
  }
  int64_t i = tid * N;
  if (i + N <= n) {
    Vec<T, N> a = *reinterpret_cast<const Vec<T, N>*>(g + i);
    Vec<T, N> b = *reinterpret_cast<const Vec<T, N>*>(u + i);
    Vec<T, N> r;
#pragma unroll
    for (int k = 0; k < N; ++k) r.v[k] = silu_mul_one(a.v[k], b.v[k]);
    *reinterpret_cast<Vec<T, N>*>(out + i) = r;
  } else {
    for (; i < n; ++i) out[i] = silu_mul_one(g[i], u[i]);
  }
}

// The halves form: row r of x is [gate_r, up_r], each `cols` long. N elements a thread as one
// vector when cols is a multiple of N and x and out are aligned (vec), else 1.
template <class T>
__global__ void __launch_bounds__(kBlock) silu_mul_halves_kernel(const T* __restrict__ x, T* __restrict__ out,
                                                                 int64_t n, int64_t cols, bool vec) {
  constexpr int N = vec_width<T>();
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (!vec) {
    if (tid < n) {
      const T* row = x + (tid / cols) * 2 * cols;
      out[tid] = silu_mul_one(row[tid % cols], row[cols + tid % cols]);
    }
    return;
  }
  const int64_t i = tid * N;
  if (i >= n) return;
  const T* row = x + (i / cols) * 2 * cols + i % cols;
  Vec<T, N> a = *reinterpret_cast<const Vec<T, N>*>(row);
  Vec<T, N> b = *reinterpret_cast<const Vec<T, N>*>(row + cols);
  Vec<T, N> r;
#pragma unroll
  for (int k = 0; k < N; ++k) r.v[k] = silu_mul_one(a.v[k], b.v[k]);
  *reinterpret_cast<Vec<T, N>*>(out + i) = r;
}

template <class T>
void silu_mul_typed(const SiluMul& p, const std::vector<array>& inputs, array& out) {
  T* dst = alloc_out<T>(out);
  const int64_t n = out.size();
  if (n == 0) return;
  if (p.halves) {
    const T* x = in_ptr<T>(inputs[0], out);
    const int64_t cols = out.shape().back();
    const bool vec = cols % vec_width<T>() == 0 && aligned16(x) && aligned16(dst);
    const int64_t threads = vec ? n / vec_width<T>() : n;
    silu_mul_halves_kernel<T><<<blocks_for(threads, kBlock), kBlock, 0, stream_of(out)>>>(x, dst, n, cols, vec);
    check_launch("silu_mul");
    return;
  }
  const T* g = in_ptr<T>(inputs[0], out);
  const T* u = in_ptr<T>(inputs[1], out);
  const bool vec = aligned16(g) && aligned16(u) && aligned16(dst);
  const int64_t threads = vec ? (n + vec_width<T>() - 1) / vec_width<T>() : n;
  silu_mul_kernel<T><<<blocks_for(threads, kBlock), kBlock, 0, stream_of(out)>>>(g, u, dst, n, vec);
  check_launch("silu_mul");
}

void silu_mul_entry(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const SiluMul&>(prim);
  KILN_DISPATCH_FLOAT(prim.name(), out.dtype(), { silu_mul_typed<T>(p, inputs, out); });
}

}  // namespace

void register_gpu_fast() {
  register_kernel(Backend::gpu, "rms_norm", rms_norm_entry);
  register_kernel(Backend::gpu, "layer_norm", layer_norm_entry);
  register_kernel(Backend::gpu, "rope", rope_entry);
  register_kernel(Backend::gpu, "silu_mul", silu_mul_entry);
}

}  // namespace kiln::cuda
