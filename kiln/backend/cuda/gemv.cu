#include "kiln/backend/cuda/gemv.cuh"

#include <cuda_runtime.h>

#include <cstring>

#include "kiln/backend/common/matmul_plan.h"
#include "kiln/backend/cuda/utils.cuh"

namespace kiln::cuda {

namespace {

constexpr int kGemvThreads = 256;
constexpr int kGemvWarps = kGemvThreads / 32;
constexpr int kUnroll = 4;  // 16-byte loads of W in flight per lane

// Warp w of block i computes out[:, n] for n = i * kGemvWarps + w: lanes take 16-byte pieces of
// W's row n (and the same pieces of each a row), kUnroll at a time, accumulate in float32, then
// reduce across the warp. MR: rows of a handled (M <= MR).
template <class T, int MR>
__global__ void __launch_bounds__(kGemvThreads)
    gemv_kernel(const T* __restrict__ a, int64_t lda, const T* __restrict__ w, int64_t ldw, T* __restrict__ c,
                const T* __restrict__ residual, int M, int64_t N, int64_t K) {
  constexpr int V = 16 / sizeof(T);
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
  if (n >= N) return;
  const T* wr = w + n * ldw;
  float acc[MR];
#pragma unroll
  for (int m = 0; m < MR; ++m) acc[m] = 0.f;
  const int64_t step = 32 * V;
  int64_t k = lane * V;
  for (; k + (kUnroll - 1) * step < K; k += kUnroll * step) {
    Vec<T, V> wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(wr + k + u * step));  // read-only path
      memcpy(&wv[u], &raw, sizeof raw);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int m = 0; m < MR; ++m) {
        if (m >= M) break;
        const Vec<T, V> av = *reinterpret_cast<const Vec<T, V>*>(a + m * lda + k + u * step);
#pragma unroll
        for (int e = 0; e < V; ++e) acc[m] += static_cast<float>(wv[u].v[e]) * static_cast<float>(av.v[e]);
      }
    }
  }
  for (; k < K; k += step) {
    const Vec<T, V> wv = *reinterpret_cast<const Vec<T, V>*>(wr + k);
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      if (m >= M) break;
      const Vec<T, V> av = *reinterpret_cast<const Vec<T, V>*>(a + m * lda + k);
#pragma unroll
      for (int e = 0; e < V; ++e) acc[m] += static_cast<float>(wv.v[e]) * static_cast<float>(av.v[e]);
    }
  }
#pragma unroll
  for (int m = 0; m < MR; ++m) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], off);
  }
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < MR; ++m)
      if (m < M) c[m * N + n] = convert<T>(residual ? acc[m] + static_cast<float>(residual[m * N + n]) : acc[m]);
  }
}

template <class T, int MR>
void launch(const T* a, int64_t lda, const T* w, int64_t ldw, T* c, const T* residual, int M, int64_t N, int64_t K,
            cudaStream_t st) {
  const int64_t blocks = (N + kGemvWarps - 1) / kGemvWarps;
  gemv_kernel<T, MR><<<static_cast<unsigned>(blocks), kGemvThreads, 0, st>>>(a, lda, w, ldw, c, residual, M, N, K);
  check_launch("matmul");
}

}  // namespace

template <class T>
bool try_gemv(const array& a, const array& b, const array& out, T* c, const T* residual) {
  constexpr int V = 16 / sizeof(T);
  const int64_t K = a.shape().back();
  gemm::Plan p = gemm::make_plan(out.shape(), K, a.strides(), b.strides());
  // One product; a row-major with unit K stride; b (K x N) the transpose of a row-major W.
  if (!p.batch.shape.empty() || p.M > 8 || p.M < 1 || p.N < 1 || K % V != 0) return false;
  if (p.a.ld == 0 || p.a.trans || p.a.cs != 1 || (p.M > 1 && p.a.ld % V != 0)) return false;
  if (p.b.ld == 0 || !p.b.trans || p.b.rs != 1 || (p.N > 1 && p.b.ld % V != 0)) return false;
  if ((p.N - 1) / 8 + 1 > 0x7fffffffLL) return false;
  const T* ap = in_ptr<T>(a, out);
  const T* wp = in_ptr<T>(b, out);
  if (!aligned16(ap) || !aligned16(wp)) return false;
  const int M = static_cast<int>(p.M);
  const int64_t lda = p.M > 1 ? p.a.ld : K, ldw = p.N > 1 ? p.b.ld : K;
  cudaStream_t st = stream_of(out);
  if (M == 1) {
    launch<T, 1>(ap, lda, wp, ldw, c, residual, M, p.N, K, st);
  } else if (M == 2) {
    launch<T, 2>(ap, lda, wp, ldw, c, residual, M, p.N, K, st);
  } else if (M <= 4) {
    launch<T, 4>(ap, lda, wp, ldw, c, residual, M, p.N, K, st);
  } else {
    launch<T, 8>(ap, lda, wp, ldw, c, residual, M, p.N, K, st);
  }
  return true;
}

template bool try_gemv<float>(const array&, const array&, const array&, float*, const float*);
template bool try_gemv<float16_t>(const array&, const array&, const array&, float16_t*, const float16_t*);
template bool try_gemv<bfloat16_t>(const array&, const array&, const array&, bfloat16_t*, const bfloat16_t*);

}  // namespace kiln::cuda
