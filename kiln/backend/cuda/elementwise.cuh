// Generic elementwise CUDA kernels: a vectorized flat path for dense operands sharing one layout
// and an indexed path for everything else. Instantiated per op and dtype by the .cu files.
#pragma once

#include "kiln/backend/cuda/utils.cuh"

namespace kiln::cuda {

constexpr int kThreads = 256;

template <class In, class Out, class F, int N>
__global__ void unary_flat(const In* __restrict__ in, Out* __restrict__ out, int64_t n, F f) {
  int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * N;
  if (i + N <= n) {
    Vec<In, N> a = *reinterpret_cast<const Vec<In, N>*>(in + i);
    Vec<Out, N> r;
#pragma unroll
    for (int k = 0; k < N; ++k) r.v[k] = f(a.v[k]);
    *reinterpret_cast<Vec<Out, N>*>(out + i) = r;
  } else {
    for (; i < n; ++i) out[i] = f(in[i]);
  }
}

template <class In, class Out, class F>
__global__ void unary_strided(const In* __restrict__ in, Out* __restrict__ out, int64_t n, StridedLayout<2> l, F f) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[2];
    l.offsets(i, off);
    out[off[1]] = f(in[off[0]]);
  }
}

template <class In, class Out, class F, int N>
__global__ void binary_flat(const In* __restrict__ a, const In* __restrict__ b, Out* __restrict__ out, int64_t n, F f) {
  int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * N;
  if (i + N <= n) {
    Vec<In, N> x = *reinterpret_cast<const Vec<In, N>*>(a + i);
    Vec<In, N> y = *reinterpret_cast<const Vec<In, N>*>(b + i);
    Vec<Out, N> r;
#pragma unroll
    for (int k = 0; k < N; ++k) r.v[k] = f(x.v[k], y.v[k]);
    *reinterpret_cast<Vec<Out, N>*>(out + i) = r;
  } else {
    for (; i < n; ++i) out[i] = f(a[i], b[i]);
  }
}

template <class In, class Out, class F>
__global__ void binary_strided(const In* __restrict__ a, const In* __restrict__ b, Out* __restrict__ out, int64_t n,
                               StridedLayout<3> l, F f) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    l.offsets(i, off);
    out[off[2]] = f(a[off[0]], b[off[1]]);
  }
}

inline unsigned strided_blocks(const array& out, int64_t n) {
  unsigned cap = static_cast<unsigned>(num_sms(out)) * 16;
  unsigned b = blocks_for(n, kThreads);
  return b < cap ? b : cap;
}

// Runs f over `in` into `out` (allocated here), choosing the flat or indexed kernel.
template <class In, class Out, class F>
void launch_unary(const array& in, array& out, F f, const char* name) {
  cudaStream_t s = stream_of(out);
  const In* src = in_ptr<In>(in, out);
  // Dense and 16-byte aligned: one vector per thread. Anything else: the indexed kernel (an
  // unaligned dense input collapses to one axis there, so it stays cheap).
  if (in.dense() && aligned16(src)) {
    Out* dst = alloc_out_like<Out>(out, in.strides(), in.data_size());
    int64_t n = in.data_size();
    if (n == 0) return;
    constexpr int N = 16 / sizeof(In) > 8 ? 8 : (16 / sizeof(In) > 0 ? 16 / sizeof(In) : 1);
    unary_flat<In, Out, F, N><<<blocks_for((n + N - 1) / N, kThreads), kThreads, 0, s>>>(src, dst, n, f);
  } else {
    Out* dst = alloc_out<Out>(out);
    int64_t n = out.size();
    if (n == 0) return;
    Strides os = row_major_strides(out.shape());
    auto l = make_layout<2>(out.shape(), {&in.strides(), &os});
    unary_strided<In, Out, F><<<strided_blocks(out, n), kThreads, 0, s>>>(src, dst, n, l, f);
  }
  check_launch(name);
}

template <class In, class Out, class F>
void launch_binary(const array& a, const array& b, array& out, F f, const char* name) {
  cudaStream_t s = stream_of(out);
  const In* x = in_ptr<In>(a, out);
  const In* y = in_ptr<In>(b, out);
  if (a.dense() && b.dense() && a.strides() == b.strides() && aligned16(x) && aligned16(y)) {
    Out* dst = alloc_out_like<Out>(out, a.strides(), a.data_size());
    int64_t n = a.data_size();
    if (n == 0) return;
    constexpr int N = 16 / sizeof(In) > 8 ? 8 : (16 / sizeof(In) > 0 ? 16 / sizeof(In) : 1);
    binary_flat<In, Out, F, N><<<blocks_for((n + N - 1) / N, kThreads), kThreads, 0, s>>>(x, y, dst, n, f);
  } else {
    Out* dst = alloc_out<Out>(out);
    int64_t n = out.size();
    if (n == 0) return;
    Strides os = row_major_strides(out.shape());
    auto l = make_layout<3>(out.shape(), {&a.strides(), &b.strides(), &os});
    binary_strided<In, Out, F><<<strided_blocks(out, n), kThreads, 0, s>>>(x, y, dst, n, l, f);
  }
  check_launch(name);
}

}  // namespace kiln::cuda
